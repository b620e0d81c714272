"""A bounded map whose entries expire, and a provider that gives a service process one
memory: the gateway's short memories (sessions, join links) and the member service's
ledger counts are built on them."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Hashable

from nameko.extensions import DependencyProvider


class Expiring:
    """Entries live ``ttl`` seconds (0: nothing is kept); past ``max_entries`` the
    oldest put goes first."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def keys_where(self, matches) -> list:
        """The keys whose value ``matches(value)``."""
        return [key for key, (_, value) in self._entries.items() if matches(value)]


class Memory(DependencyProvider):
    """One memory per service process, made by ``make()`` at setup and shared by its
    workers (e.g. ``Memory(lambda: SessionCache(settings().session_cache_seconds))``)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def setup(self) -> None:
        self.memory = self.make()

    def get_dependency(self, worker_ctx) -> Any:
        return self.memory
