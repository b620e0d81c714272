"""The member service: memberships of ledgers. Entrypoints only translate and delegate
to :mod:`services.member.memberships`."""

from __future__ import annotations

import logging
from datetime import datetime

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.member import memberships
from services.member.live_counts import LiveCounts
from services.member.models import Base  # noqa: F401 - registers the outbox tables
from shared import handling
from shared.config import settings
from shared.crypto import crypto
from shared.db import Database, service_health
from shared.errors import TuantibuError
from shared.expiring import Memory
from shared.handling import handles
from shared.heap import SettledHeap
from shared.outbox import OutboxRelay
from shared.rpc import Rpc, rpc
from shared.sms import sms_sender

log = logging.getLogger(__name__)
expected = (TuantibuError,)


class SmsProvider(DependencyProvider):
    """The SMS channel (reminders to members), chosen by config."""

    def setup(self) -> None:
        self.sender = sms_sender(settings())

    def get_dependency(self, worker_ctx):
        return self.sender


class MemberService(handling.ForgetsHandledEvents):
    name = "member"

    db = Database()
    relay = OutboxRelay()
    sms = SmsProvider()
    org = Rpc("org")
    heap = SettledHeap()
    live_counts = Memory(LiveCounts)

    # -- joining ---------------------------------------------------------------------

    @rpc(expected_exceptions=expected)
    def request_join(self, token: str, sealed_body: str, client: str = "") -> dict:
        body = crypto().unseal("member", sealed_body)
        return memberships.request_join(
            self.db, crypto(), settings().qr_signing_key, token, body, client, ask_org=self.org.ledger_for_join,
            live_counts=self.live_counts,
        )

    @handles("verify.identity_verified")  # of joins only (routed by purpose)
    def on_identity_verified(self, data: dict, envelope: dict) -> None:
        memberships.activate(self.db, crypto(), data["subject_id"], data["challenge_id"], data["person_ref"])

    @handles("verify.identity_rejected")  # of joins only
    def on_identity_rejected(self, data: dict, envelope: dict) -> None:
        memberships.discard_pending(self.db, data["subject_id"], data["challenge_id"])

    @timer(interval=settings().sweep_interval_seconds)
    def sweep_abandoned_joins(self) -> None:
        # verify expires unconfirmed challenges and says so by event; this catches any
        # pending membership that outlived that by far (e.g. a lost verify outbox)
        removed = memberships.sweep_abandoned(self.db, 4 * settings().code_ttl_seconds)
        if removed:
            log.info("removed %d abandoned pending memberships", removed)

    @timer(interval=settings().housekeeping_seconds)
    def forget_old_access(self) -> None:
        memberships.forget_old_access(self.db, settings().access_log_days)

    # -- self-service ------------------------------------------------------------------

    @rpc(expected_exceptions=expected)
    def belonging(self, person_refs: list) -> list:
        return memberships.belonging(self.db, person_refs)

    @rpc(expected_exceptions=expected)
    def people_of_closed_ledger(self, ledger_id: str) -> list:
        return memberships.people_of_closed_ledger(self.db, ledger_id)

    @rpc(expected_exceptions=expected)
    def join_state(self, membership_id: str, person_ref: str) -> str | None:
        return memberships.join_state(self.db, membership_id, person_ref)

    @rpc(expected_exceptions=expected)
    def my_memberships(self, person_ref: str) -> list:
        return memberships.my_memberships(self.db, person_ref)

    @rpc(expected_exceptions=expected)
    def leave(self, membership_id: str, person_ref: str) -> dict:
        return memberships.leave(self.db, membership_id, person_ref)

    # -- admins ------------------------------------------------------------------------

    @rpc(expected_exceptions=expected)
    def list_members(
        self, ledger_id: str, person_ref: str, page=1, page_size=50, status="active", order="desc", q=None,
        sort_by_name: bool = False, joined_from=None, joined_to=None, filters: dict | None = None,
    ) -> dict:
        return memberships.list_members(
            self.db, crypto(), ledger_id, person_ref, page, page_size, status, order, q, sort_by_name,
            joined_from, joined_to, filters,
        )

    @rpc(expected_exceptions=expected)
    def remove_member(self, ledger_id: str, membership_id: str, person_ref: str, reason) -> dict:
        return memberships.remove_member(self.db, ledger_id, membership_id, person_ref, reason)

    @rpc(expected_exceptions=expected)
    def member_details(self, ledger_id: str, person_ref: str, ids: list, view: str, filters: dict) -> dict:
        return memberships.member_details(self.db, crypto(), ledger_id, person_ref, ids, view, filters)

    @rpc(expected_exceptions=expected)
    def search_members(
        self, ledger_id: str, person_ref: str, ids: list, q, sort_by_name: bool, order: str, page: int,
        page_size: int, view: str, filters: dict,
    ) -> dict:
        return memberships.search_members(
            self.db, crypto(), ledger_id, person_ref, ids, q, sort_by_name, order, page, page_size, view, filters
        )

    @rpc(expected_exceptions=expected)
    def access_log(self, ledger_id: str, person_ref: str, page=1, page_size=50) -> dict:
        return memberships.access_log(self.db, ledger_id, person_ref, page, page_size)

    @rpc(expected_exceptions=expected)
    def views_of_my_ledger(self, membership_id: str, person_ref: str, page=1, page_size=50) -> dict:
        return memberships.views_of_my_ledger(self.db, membership_id, person_ref, page, page_size)

    @rpc(expected_exceptions=expected)
    def send_reminders(self, ledger_id: str, person_ref: str, abnormal: dict, rule_text: str) -> dict:
        return memberships.send_reminders(
            self.db, crypto(), self.sms, ledger_id, person_ref, abnormal, rule_text
        )

    # -- the ledger projection --------------------------------------------------------

    @handles("org.ledger_activated")
    def on_ledger_activated(self, data: dict, envelope: dict) -> None:
        memberships.ledger_activated(self.db, crypto(), data)

    @handles("org.admin_added")
    def on_admin_added(self, data: dict, envelope: dict) -> None:
        memberships.admin_added(self.db, data)

    @handles("org.admin_removed")
    def on_admin_removed(self, data: dict, envelope: dict) -> None:
        memberships.admin_removed(self.db, data)

    @handles("org.qr_rotated")
    def on_qr_rotated(self, data: dict, envelope: dict) -> None:
        memberships.qr_rotated(self.db, data)

    @handles("org.member_cap_changed")
    def on_member_cap_changed(self, data: dict, envelope: dict) -> None:
        memberships.member_cap_changed(self.db, data)

    @handles("org.ledger_closed")
    def on_ledger_closed(self, data: dict, envelope: dict) -> None:
        memberships.ledger_closed(self.db, data["ledger_id"], datetime.fromisoformat(envelope["occurred_at"]))

    @rpc
    def health(self) -> dict:
        return service_health(self.name, self.db)
