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


class _Tagged:
    __slots__ = ("event", "key")

    def __init__(self, event: Event, key: Hashable) -> None:
        self.event = event
        self.key = key


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
        for waiter in self._waiting.pop(key, []):
            if not waiter.event.ready():
                waiter.event.send((waiter.key, data))

    def wait(self, key: Hashable, timeout: float) -> Any | None:
        """The event's data, or None if it did not come within ``timeout`` seconds."""
        found = self.wait_any([key], timeout)
        return found[1] if found else None

    def wait_any(self, keys: list[Hashable], timeout: float) -> tuple[Hashable, Any] | None:
        """The first of several events to arrive, as (key, data)."""
        for key in keys:
            if key in self._recent:
                return key, self._recent[key][1]
        event = Event()
        for key in keys:
            self._waiting.setdefault(key, []).append(_Tagged(event, key))
        try:
            with eventlet.Timeout(timeout, False):
                return event.wait()
            return None
        finally:
            for key in keys:
                waiting = self._waiting.get(key)
                if waiting:
                    waiting[:] = [w for w in waiting if w.event is not event]
                    if not waiting:
                        del self._waiting[key]


class WaiterProvider(DependencyProvider):
    def setup(self) -> None:
        self.waiter = Waiter()

    def get_dependency(self, worker_ctx) -> Waiter:
        return self.waiter
