"""The member service: memberships of ledgers (the join flow builds on this)."""

from __future__ import annotations

from nameko.rpc import rpc

from services.member.models import Base  # noqa: F401 - registers the outbox tables
from shared.db import Database
from shared.outbox import OutboxRelay


class MemberService:
    name = "member"

    db = Database()
    relay = OutboxRelay()

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}
