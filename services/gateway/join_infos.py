"""A short memory of what join links show (the org, its masked owner, whether the ledger
is open), so that a crowd scanning one poster does not cost an RPC to org per person.

An entry lives ``JOIN_INFO_CACHE_SECONDS`` (default 10). What changes what a link
shows is forgotten at once: a rotation answered by this instance, and the broadcast
events of a rotation, a closed ledger or a new owner (another gateway instance that
missed one shows the old page for at most that long). Only what org answered for a
valid link is kept; whether someone may join is decided by the member service."""

from __future__ import annotations

from shared.expiring import Expiring

MAX_ENTRIES = 10_000


class JoinInfoCache:
    def __init__(self, ttl: float) -> None:
        self._entries = Expiring(ttl, MAX_ENTRIES)

    def get(self, token: str) -> dict | None:
        return self._entries.get(token)

    def put(self, token: str, info: dict) -> None:
        self._entries.put(token, info)

    def forget_ledger(self, ledger_id: str) -> None:
        for token in self._entries.keys_where(lambda info: info.get("ledger_id") == ledger_id):
            self._entries.pop(token)

