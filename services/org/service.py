"""The org service: ledgers, their admins and join links. Entrypoints only translate
and delegate to :mod:`services.org.ledgers`."""

from __future__ import annotations

import logging

from nameko.timer import timer

from services.org import ledgers
from services.org.models import Base  # noqa: F401 - registers the outbox tables
from shared import handling
from shared.config import settings
from shared.crypto import crypto
from shared.db import Database, service_health
from shared.errors import TuantibuError
from shared.handling import handles
from shared.heap import SettledHeap
from shared.outbox import OutboxRelay
from shared.rpc import Rpc, rpc

log = logging.getLogger(__name__)

expected = (TuantibuError,)


class OrgService(handling.ForgetsHandledEvents):
    name = "org"

    db = Database()
    relay = OutboxRelay()
    verify = Rpc("verify")
    heap = SettledHeap()

    @rpc(expected_exceptions=expected)
    def create_ledger(self, sealed_application: str, client: str = "") -> dict:
        application = crypto().unseal("org", sealed_application)
        return ledgers.register_ledger(self.db, crypto(), application, client, settings().ledger_member_cap)

    @rpc(expected_exceptions=expected)
    def get_ledger(self, ledger_id: str, person_ref: str) -> dict:
        return ledgers.get_ledger(self.db, crypto(), ledger_id, person_ref)

    @rpc(expected_exceptions=expected)
    def join_link(self, ledger_id: str, person_ref: str, expires_in_days=None) -> dict:
        return ledgers.join_link(self.db, settings().qr_signing_key, ledger_id, person_ref, expires_in_days)

    @rpc(expected_exceptions=expected)
    def rotate_qr(self, ledger_id: str, person_ref: str) -> dict:
        return ledgers.rotate_join_link(self.db, settings().qr_signing_key, ledger_id, person_ref)

    @rpc(expected_exceptions=expected)
    def set_member_cap(self, ledger_id: str, member_cap) -> dict:
        """For operators (``python -m services.org.cli``); the gateway does not expose it."""
        return ledgers.set_member_cap(self.db, ledger_id, member_cap)

    @rpc(expected_exceptions=expected)
    def join_info(self, token: str) -> dict:
        return ledgers.join_info(self.db, crypto(), settings().qr_signing_key, token)

    @rpc(expected_exceptions=expected)
    def ledger_for_join(self, token: str) -> dict:
        return ledgers.ledger_for_join(self.db, settings().qr_signing_key, token)

    @rpc(expected_exceptions=expected)
    def admins_of(self, ledger_id: str) -> list:
        return ledgers.admins_of(self.db, ledger_id)

    @rpc(expected_exceptions=expected)
    def administering(self, person_refs: list) -> list:
        return ledgers.administering(self.db, person_refs)

    @rpc(expected_exceptions=expected)
    def my_ledgers(self, person_ref: str) -> list:
        return ledgers.my_ledgers(self.db, person_ref)

    @rpc(expected_exceptions=expected)
    def request_close(self, ledger_id: str, person_ref: str, client: str = "") -> dict:
        """Closing is destructive: the owner re-confirms with an SMS code first."""
        ledger = ledgers.check_closable(self.db, ledger_id, person_ref)
        act = f"关闭团体簿「{ledger.org_name}」并销毁其成员数据"
        challenge = self.verify.start_reconfirm(person_ref, ledger.id, client, act)
        ledgers.await_close_confirmation(self.db, ledger.id, challenge["challenge_id"])
        return challenge

    @rpc(expected_exceptions=expected)
    def get_rules(self, ledger_id: str, person_ref: str) -> dict:
        return ledgers.get_rules(self.db, ledger_id, person_ref)

    @rpc(expected_exceptions=expected)
    def set_rules(self, ledger_id: str, person_ref: str, body: dict) -> dict:
        return ledgers.set_rules(self.db, ledger_id, person_ref, body)

    @rpc(expected_exceptions=expected)
    def list_admins(self, ledger_id: str, person_ref: str) -> dict:
        return ledgers.list_admins(self.db, crypto(), ledger_id, person_ref)

    @rpc(expected_exceptions=expected)
    def invite_admin(self, ledger_id: str, person_ref: str, sealed_body: str, client: str = "") -> dict:
        body = crypto().unseal("org", sealed_body)
        return ledgers.invite_admin(self.db, crypto(), ledger_id, person_ref, body, client)

    @rpc(expected_exceptions=expected)
    def remove_admin(self, ledger_id: str, person_ref: str, admin_id: str) -> dict:
        return ledgers.remove_admin(self.db, ledger_id, person_ref, admin_id)

    @rpc(expected_exceptions=expected)
    def request_transfer(self, ledger_id: str, person_ref: str, admin_id, client: str = "") -> dict:
        """Ownership moves only after the owner re-confirms with an SMS code."""
        ledger, target = ledgers.check_transfer(self.db, ledger_id, person_ref, admin_id)
        act = f"把团体簿「{ledger.org_name}」的所有权转让给其他管理员"
        challenge = self.verify.start_reconfirm(person_ref, ledger.id, client, act)
        ledgers.await_transfer_confirmation(self.db, ledger.id, target.id, challenge["challenge_id"])
        return challenge

    @timer(interval=settings().housekeeping_seconds)
    def close_ended_ledgers(self) -> None:
        closed = ledgers.close_ended_ledgers(self.db)
        if closed:
            log.info("closed %d ledgers past their end date", closed)

    @handles("verify.identity_verified")  # of shared.events.ORG_PURPOSES only (routed by purpose)
    def on_identity_verified(self, data: dict, envelope: dict) -> None:
        purpose, subject, challenge, person = data["purpose"], data["subject_id"], data["challenge_id"], data["person_ref"]
        if purpose == "ledger_registration":
            ledgers.activate_ledger(self.db, crypto(), subject, challenge, person)
        elif purpose == "admin_invite":
            ledgers.activate_admin(self.db, crypto(), subject, challenge, person)
        elif purpose == "reconfirm":
            # a re-confirmation is for whichever destructive act is waiting on it
            ledgers.close_ledger(self.db, subject, challenge, person) or ledgers.transfer_ownership(
                self.db, crypto(), subject, challenge, person
            )

    @handles("verify.identity_rejected")  # of ORG_PURPOSES only
    def on_identity_rejected(self, data: dict, envelope: dict) -> None:
        if data["purpose"] == "ledger_registration":
            ledgers.discard_pending_ledger(self.db, data["subject_id"], data["challenge_id"])
        elif data["purpose"] == "admin_invite":
            ledgers.discard_pending_admin(self.db, data["subject_id"], data["challenge_id"])

    @rpc
    def ping(self) -> dict:
        """Does nothing: the reference for benchmarks (one HTTP → RPC round trip)."""
        return {"pong": True}

    @rpc
    def health(self) -> dict:
        return service_health(self.name, self.db)
