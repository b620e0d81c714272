"""The healthsync service: comparison with the Health Kit (the runs build on this)."""

from __future__ import annotations

from nameko.rpc import rpc

from services.healthsync.models import Base  # noqa: F401 - registers the outbox tables
from shared.db import Database
from shared.outbox import OutboxRelay


class HealthsyncService:
    name = "healthsync"

    db = Database()
    relay = OutboxRelay()

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}
