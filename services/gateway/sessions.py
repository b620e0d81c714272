"""A short memory of sessions the verify service confirmed, so that not every request
costs an RPC. An entry lives ``SESSION_CACHE_SECONDS`` (default 10): a session revoked
through another gateway instance, or timed out, stops working here within that time;
logging out through this instance forgets it at once. Tokens are kept only as hashes."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from nameko.extensions import DependencyProvider

MAX_ENTRIES = 50_000


class SessionCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> str | None:
        entry = self._entries.get(self._key(token))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, person_ref: str) -> None:
        if self.ttl <= 0:
            return
        key = self._key(token)
        self._entries[key] = (time.monotonic() + self.ttl, person_ref)
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def forget(self, token: str) -> None:
        self._entries.pop(self._key(token), None)


class SessionCacheProvider(DependencyProvider):
    def setup(self) -> None:
        from shared.config import settings

        self.cache = SessionCache(settings().session_cache_seconds)

    def get_dependency(self, worker_ctx) -> SessionCache:
        return self.cache
