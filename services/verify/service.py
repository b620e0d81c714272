"""The verify service: identity checks against the Health Kit, SMS codes, sessions.
Entrypoints only translate and delegate to :class:`services.verify.challenges.Challenges`."""

from __future__ import annotations

import logging

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.verify.challenges import Challenges, now
from services.verify.models import Base  # noqa: F401 - registers the outbox tables
from shared import handling
from shared.config import settings
from shared.crypto import crypto
from shared.db import Database
from shared.errors import TuantibuError
from shared.handling import handles
from shared.healthkit import health_kit
from shared.heap import SettledHeap
from shared.outbox import OutboxRelay
from shared.rpc import Rpc, rpc
from shared.sms import sms_sender

log = logging.getLogger(__name__)
expected = (TuantibuError,)


class Adapters(DependencyProvider):
    """The external systems verify talks to (Health Kit, SMS), chosen by config."""

    def setup(self) -> None:
        self.health_kit = health_kit(settings())
        self.sms = sms_sender(settings())

    def get_dependency(self, worker_ctx):
        return self


class VerifyService(handling.ForgetsHandledEvents):
    name = "verify"

    db = Database()
    relay = OutboxRelay()
    adapters = Adapters()
    member = Rpc("member")
    org = Rpc("org")
    heap = SettledHeap()

    @property
    def challenges(self) -> Challenges:
        return Challenges(self.db, crypto(), self.adapters.health_kit, self.adapters.sms, settings())

    @handles("org.ledger_registered")
    def on_ledger_registered(self, data: dict, envelope: dict) -> None:
        applicant = crypto().unseal("verify", data["applicant"])
        self.challenges.start_identity(
            data["challenge_id"], "ledger_registration", data["ledger_id"], applicant, data.get("client", "")
        )

    @handles("member.join_requested")
    def on_join_requested(self, data: dict, envelope: dict) -> None:
        applicant = crypto().unseal("verify", data["applicant"])
        self.challenges.start_identity(
            data["challenge_id"], "join", data["membership_id"], applicant, data.get("client", "")
        )

    @handles("member.left")
    def on_member_left(self, data: dict, envelope: dict) -> None:
        """Someone left a ledger: if they belong nowhere now (no live membership, no
        ledger they administer), the phone verify kept for their logins goes too."""
        person_ref = data.get("person_ref")
        if not person_ref:
            return
        asked_at = now()
        if self.member.belongs(person_ref):
            return
        if any(ledger["status"] == "active" for ledger in self.org.my_ledgers(person_ref)):
            return
        if self.challenges.forget_identity(person_ref, asked_at):
            log.info("forgot the phone of a person who left their last ledger")

    @handles("org.admin_invited")
    def on_admin_invited(self, data: dict, envelope: dict) -> None:
        applicant = crypto().unseal("verify", data["applicant"])
        self.challenges.start_identity(
            data["challenge_id"], "admin_invite", data["admin_id"], applicant, data.get("client", "")
        )

    @rpc(expected_exceptions=expected)
    def send_notice(self, person_ref: str, template: str, params: dict) -> dict:
        """An SMS to someone who verified their phone here (e.g. an admin's digest)."""
        return self.challenges.send_notice(person_ref, template, params)

    @timer(interval=settings().sweep_interval_seconds)
    def expire_unconfirmed(self) -> None:
        expired = self.challenges.expire_unconfirmed()
        if expired:
            log.info("expired %d unconfirmed challenges", expired)

    @timer(interval=settings().housekeeping_seconds)
    def forget_old(self) -> None:
        forgotten = self.challenges.forget_old(settings().challenge_days)
        if any(forgotten.values()):
            log.info("forgot %(challenges)d old challenges, %(sessions)d ended sessions, "
                     "%(sms_sends)d SMS send records", forgotten)

    @rpc(expected_exceptions=expected)
    def start_reconfirm(self, person_ref: str, subject_id: str, client: str = "") -> dict:
        return self.challenges.start_reconfirm(person_ref, subject_id, client)

    @rpc(expected_exceptions=expected)
    def get_challenge(self, challenge_id: str) -> dict:
        return self.challenges.get(challenge_id)

    @rpc(expected_exceptions=expected)
    def confirm_code(self, challenge_id: str, code: str) -> dict:
        return self.challenges.confirm(challenge_id, code)

    @rpc(expected_exceptions=expected)
    def resend_code(self, challenge_id: str) -> dict:
        return self.challenges.resend(challenge_id)

    @rpc(expected_exceptions=expected)
    def start_login(self, sealed_phone: str, client: str = "") -> dict:
        phone = crypto().unseal("verify", sealed_phone)["phone"]
        return self.challenges.start_login(phone, client)

    @rpc(expected_exceptions=expected)
    def check_session(self, token: str) -> dict:
        return self.challenges.check_session(token)

    @rpc(expected_exceptions=expected)
    def revoke_session(self, token: str) -> None:
        self.challenges.revoke_session(token)

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}
