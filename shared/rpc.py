"""RPC between services, with a timeout.

Nameko 2.x waits for an RPC reply forever. Every caller here waits at most
``RPC_TIMEOUT`` seconds (or the timeout given) and then raises
:class:`shared.errors.Unavailable`, which the gateway turns into a 503.
"""

from __future__ import annotations

from typing import Any

import eventlet
from nameko.rpc import RpcProxy

from shared.config import settings
from shared.errors import Unavailable


class TimedServiceProxy:
    def __init__(self, proxy: Any, service: str, timeout: float) -> None:
        self._proxy = proxy
        self._service = service
        self._timeout = timeout

    def __getattr__(self, method: str):
        target = getattr(self._proxy, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            reply = target.call_async(*args, **kwargs)
            with eventlet.Timeout(self._timeout, False):
                return reply.result()
            raise Unavailable(f"The {self._service} service did not answer in time.")

        return call


class Rpc(RpcProxy):
    """Like Nameko's ``RpcProxy``, but every call gives up after a timeout."""

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any) -> None:
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        proxy = super().get_dependency(worker_ctx)
        return TimedServiceProxy(proxy, self.target_service, self.timeout or settings().rpc_timeout)
