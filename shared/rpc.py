"""RPC between services: a timeout for callers, and commit-before-reply for servers.

Nameko 2.x waits for an RPC reply forever. Every caller here waits at most
``RPC_TIMEOUT`` seconds (or the timeout given) and then raises
:class:`shared.errors.Unavailable`, which the gateway turns into a 503.

Nameko also sends an RPC's reply *before* its dependencies see the end of the worker,
so a plain ``Database`` would commit after the caller already has its answer: a read
straight after could miss the write, and a failed commit would go unnoticed by a caller
told "done". ``@rpc`` from here commits the worker's session first and replies with an
error if the commit fails.

Requests and replies go out without publisher confirms (see ``UnconfirmedPublisher``).
Nameko still asks for ``mandatory`` delivery of a request and warns, at every process's
first call, that without confirms an unroutable one goes unseen. That is known and
handled: such a request ends as the caller's timeout (a 503), so the warning is
silenced rather than left to alarm whoever reads the logs.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import eventlet
from nameko.amqp.publish import Publisher, get_connection
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.rpc import ReplyListener, Responder, RpcConsumer, RpcProxy, get_rpc_exchange
from nameko.rpc import Rpc as RpcEntrypoint

from shared.config import settings
from shared.db import Database
from shared.errors import Unavailable

log = logging.getLogger(__name__)

warnings.filterwarnings(
    "ignore", message="Mandatory delivery was requested, but unroutable messages cannot be detected",
    category=UserWarning, module="nameko.amqp.publish",
)


class TimedServiceProxy:
    def __init__(self, proxy: Any, service: str, timeout: float) -> None:
        self._proxy = proxy
        self._service = service
        self._timeout = timeout

    def within(self, timeout: float) -> "TimedServiceProxy":
        """The same proxy with another timeout (e.g. a quick health check)."""
        return TimedServiceProxy(self._proxy, self._service, timeout)

    def __getattr__(self, method: str):
        target = getattr(self._proxy, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            reply = target.call_async(*args, **kwargs)
            with eventlet.Timeout(self._timeout, False):
                return reply.result()
            raise Unavailable(f"The {self._service} service did not answer in time.")

        return call


class DeclaredReplyListener(ReplyListener):
    """Nameko's reply listener, its queue declared (and bound) when the container is set
    up. Nameko declares it only when its consumer starts, alongside the container's other
    extensions: a request the gateway's HTTP server took in that moment made a call
    whose reply the broker dropped as unroutable, and the caller waited out its timeout
    (every gateway start). The queue expires unused as Nameko's does."""

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        with get_connection(config[AMQP_URI_CONFIG_KEY], ssl=config.get(AMQP_SSL_CONFIG_KEY),
                            login_method=config.get(LOGIN_METHOD_CONFIG_KEY)) as connection:
            self.queue(connection.default_channel).declare()


class Rpc(RpcProxy):
    """Like Nameko's ``RpcProxy``, but every call gives up after a timeout, and its
    replies have a queue from the start (``DeclaredReplyListener``)."""

    rpc_reply_listener = DeclaredReplyListener()

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any) -> None:
        options.setdefault("use_confirms", False)  # see UnconfirmedPublisher
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        proxy = super().get_dependency(worker_ctx)
        return TimedServiceProxy(proxy, self.target_service, self.timeout or settings().rpc_timeout)


class UnconfirmedPublisher(Publisher):
    """RPC requests and replies go out without waiting for the broker's confirm (a
    round trip each way). A request or reply the broker loses (it would have to crash
    between receiving and routing it) ends as the caller's timeout, never as a false
    answer; events, which nobody waits for, keep their confirms (the outbox relay)."""

    use_confirms = False


class UnconfirmedResponder(Responder):
    publisher_cls = UnconfirmedPublisher


class ReplyingRpcConsumer(RpcConsumer):
    """Nameko's RPC consumer, replying through :class:`UnconfirmedResponder`."""

    def handle_result(self, message, result, exc_info):
        config = self.container.config
        responder = UnconfirmedResponder(
            config[AMQP_URI_CONFIG_KEY],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class TransactionalRpc(RpcEntrypoint):
    rpc_consumer = ReplyingRpcConsumer()

    def handle_result(self, message, worker_ctx, result, exc_info):
        for dependency in self.container.dependencies:
            if isinstance(dependency, Database):
                try:
                    dependency.finish(worker_ctx, exc_info)
                except Exception as exc:  # noqa: BLE001 - the caller must not hear "done"
                    log.error("commit failed in %s (%s)", self.method_name, type(exc).__name__)
                    try:
                        raise Unavailable("The change could not be saved; please try again.") from None
                    except Unavailable:
                        result, exc_info = None, sys.exc_info()
        return super().handle_result(message, worker_ctx, result, exc_info)


rpc = TransactionalRpc.decorator
