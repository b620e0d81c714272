"""Waiting in an HTTP request for an event another service will publish.

Verification happens by events (org → verify → org), but a person filling a form wants
the answer in the response. Each gateway instance listens to the few events that end a
wait (broadcast, non-durable: losing one only means the client polls) and wakes the
request waiting for that key. Recent events are kept for a minute, so an event that
arrives before the request starts waiting is not missed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Hashable

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider

RECENT_SECONDS = 60.0
RECENT_MAX = 10_000


class Waiter:
    def __init__(self) -> None:
        self._waiting: dict[Hashable, list[Event]] = {}
        self._recent: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def deliver(self, key: Hashable, data: Any) -> None:
        now = time.monotonic()
        self._recent[key] = (now, data)
        self._recent.move_to_end(key)
        while self._recent and (
            len(self._recent) > RECENT_MAX or next(iter(self._recent.values()))[0] < now - RECENT_SECONDS
        ):
            self._recent.popitem(last=False)
        for event in self._waiting.pop(key, []):
            event.send(data)

    def wait(self, key: Hashable, timeout: float) -> Any | None:
        """The event's data, or None if it did not come within ``timeout`` seconds."""
        if key in self._recent:
            return self._recent[key][1]
        event = Event()
        self._waiting.setdefault(key, []).append(event)
        try:
            with eventlet.Timeout(timeout, False):
                return event.wait()
            return None
        finally:
            waiting = self._waiting.get(key)
            if waiting and event in waiting:
                waiting.remove(event)
                if not waiting:
                    del self._waiting[key]


class WaiterProvider(DependencyProvider):
    def setup(self) -> None:
        self.waiter = Waiter()

    def get_dependency(self, worker_ctx) -> Waiter:
        return self.waiter
