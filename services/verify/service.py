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
from shared.db import Database, service_health
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
        failed = self.challenges.supersede(data["replaces"]) if data.get("replaces") else 0
        applicant = crypto().unseal("verify", data["applicant"])
        self.challenges.start_identity(
            data["challenge_id"], "join", data["membership_id"], applicant, data.get("client", ""), failed,
            answer=data.get("answer"),
        )

    # Forgetting people who belong nowhere any more: verify keeps a verified person's
    # phone (for logins and reminders) only while they are a member of a ledger or an
    # admin of an active one. These three events are when that may have ended.

    @handles("member.left")
    def on_member_left(self, data: dict, envelope: dict) -> None:
        if data.get("person_ref"):
            self._forget_if_belonging_nowhere([data["person_ref"]], now())

    @handles("org.admin_removed")
    def on_admin_removed(self, data: dict, envelope: dict) -> None:
        self._forget_if_belonging_nowhere([data["person_ref"]], now())

    @handles("org.ledger_closed")
    def on_ledger_closed(self, data: dict, envelope: dict) -> None:
        """Its members (member answers once it has closed the ledger itself; until then
        this is retried) and its admins."""
        asked_at = now()
        people = set(self.member.people_of_closed_ledger(data["ledger_id"])) | set(self.org.admins_of(data["ledger_id"]))
        self._forget_if_belonging_nowhere(sorted(people), asked_at)

    def _forget_if_belonging_nowhere(self, person_refs: list, asked_at) -> None:
        """``asked_at``: taken before asking, so a verification since keeps a phone."""
        if not person_refs:
            return
        keep = set(self.member.belonging(person_refs)) | set(self.org.administering(person_refs))
        forgotten = self.challenges.forget_identities([r for r in person_refs if r not in keep], asked_at)
        if forgotten:
            log.info("forgot the phones of %d people who belong to no ledger any more", forgotten)

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
    def start_reconfirm(self, person_ref: str, subject_id: str, client: str = "", act: str = "") -> dict:
        return self.challenges.start_reconfirm(person_ref, subject_id, client, act)

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
        return service_health(self.name, self.db)
