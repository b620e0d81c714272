"""A short memory of sessions the verify service confirmed, so that not every request
costs an RPC. An entry lives ``SESSION_CACHE_SECONDS`` (default 10): a session revoked
through another gateway instance, or timed out, stops working here within that time;
logging out through this instance forgets it at once. Tokens are kept only as hashes."""

from __future__ import annotations

import hashlib

from shared.expiring import Expiring

MAX_ENTRIES = 50_000


class SessionCache:
    def __init__(self, ttl: float) -> None:
        self._entries = Expiring(ttl, MAX_ENTRIES)

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> str | None:
        return self._entries.get(self._key(token))

    def put(self, token: str, person_ref: str) -> None:
        self._entries.put(self._key(token), person_ref)

    def forget(self, token: str) -> None:
        self._entries.pop(self._key(token))

