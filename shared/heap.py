"""The garbage collector of a long-running service.

Everything that exists once a service has started (modules, classes, the container and
its extensions, connection pools) lives as long as the process. Left in the collector's
oldest generation, every full collection walks all of it again: measured under the view
benchmark, 60-100 ms each, several a minute, each one a pause in whatever request was
being served. :class:`SettledHeap` collects once when the container starts and freezes
what is left (``gc.freeze``), so later collections look only at objects made since.
"""

from __future__ import annotations

import gc
import logging

from nameko.extensions import DependencyProvider

log = logging.getLogger(__name__)


def settle() -> int:
    """Collect what startup left as garbage, then freeze the rest; the number frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class SettledHeap(DependencyProvider):
    """Settles the heap when the container starts: every extension has been set up by
    then (nameko sets all of them up before it starts any)."""

    def start(self) -> None:
        frozen = settle()
        log.debug("heap settled: %d objects frozen", frozen)

    def get_dependency(self, worker_ctx):
        return None
