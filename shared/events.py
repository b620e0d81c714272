"""Event contracts: every event on the bus, in one place.

An event is a fact in the past tense, published by the service that owns it through
that service's transactional outbox (``shared.outbox``) and consumed by the handlers
listed here (``shared.handling.handles``). Each contract names its marshmallow schema
and its durable subscribers, so a relay can declare their queues before anything is
published (an event with no queue is dropped) and a test can check that the
subscribers listed here are exactly the handlers the services declare.

Personal data never travels in plaintext: where a consumer needs an ID number or a
phone, the field holds a token sealed for that consumer (``Crypto.seal``).

The envelope every message carries::

    {"event_id": uuid, "event_type": "org.ledger_registered",
     "occurred_at": iso-8601, "aggregate_id": str, "data": {...}}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marshmallow import EXCLUDE, Schema, fields, validate

PURPOSES = ("ledger_registration", "join", "login", "reconfirm", "admin_invite")


class LedgerRegistered(Schema):
    ledger_id = fields.String(required=True)
    challenge_id = fields.String(required=True)
    # {name, id_type, id_number, phone} sealed for "verify"
    applicant = fields.String(required=True)
    client = fields.String(load_default="")  # the applicant's address, for SMS caps


class LedgerActivated(Schema):
    ledger_id = fields.String(required=True)
    owner_ref = fields.String(required=True)
    org_name = fields.String(required=True)
    qr_version = fields.Integer(required=True)
    member_cap = fields.Integer(required=True)
    owner_name = fields.String(load_default="")  # masked, as joiners see it
    rules = fields.Dict(load_default=None, allow_none=True)


class RulesChanged(Schema):
    ledger_id = fields.String(required=True)
    rules = fields.Dict(required=True)


class AdminAdded(Schema):
    ledger_id = fields.String(required=True)
    person_ref = fields.String(required=True)
    role = fields.String(required=True)  # owner | co_admin
    masked_name = fields.String(required=True)
    admin_id = fields.String(load_default=None, allow_none=True)


class AdminRemoved(Schema):
    ledger_id = fields.String(required=True)
    person_ref = fields.String(required=True)


class AdminInvited(Schema):
    ledger_id = fields.String(required=True)
    admin_id = fields.String(required=True)
    challenge_id = fields.String(required=True)
    # {name, id_type, id_number, phone} sealed for "verify"
    applicant = fields.String(required=True)
    client = fields.String(load_default="")


class QrRotated(Schema):
    ledger_id = fields.String(required=True)
    qr_version = fields.Integer(required=True)


class LedgerClosed(Schema):
    ledger_id = fields.String(required=True)


class JoinRequested(Schema):
    membership_id = fields.String(required=True)
    ledger_id = fields.String(required=True)
    challenge_id = fields.String(required=True)
    # {name, id_type, id_number, phone} sealed for "verify"
    applicant = fields.String(required=True)
    client = fields.String(load_default="")


class MemberJoined(Schema):
    membership_id = fields.String(required=True)
    ledger_id = fields.String(required=True)
    person_ref = fields.String(required=True)
    # {id_type, id_number} sealed for "healthsync", which must ask the Health Kit
    subject = fields.String(required=True)
    joined_at = fields.String(required=True)


class MemberLeft(Schema):
    membership_id = fields.String(required=True)
    ledger_id = fields.String(required=True)
    person_ref = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True)  # left | removed | ledger_closed
    left_at = fields.String(required=True)


class LedgerWork(Schema):
    """A command in event's clothing: "compare this ledger in this run"."""

    run_id = fields.String(required=True)
    ledger_id = fields.String(required=True)


class RunStarted(Schema):
    run_id = fields.String(required=True)
    trigger = fields.String(required=True)
    ledger_id = fields.String(allow_none=True, load_default=None)
    ledgers_total = fields.Integer(required=True)


class RunFinished(Schema):
    run_id = fields.String(required=True)
    ledgers_done = fields.Integer(required=True)
    ledgers_failed = fields.Integer(required=True)
    people_compared = fields.Integer(required=True)


class LedgerSynced(Schema):
    run_id = fields.String(required=True)
    ledger_id = fields.String(required=True)
    status = fields.String(required=True)  # done | failed
    people = fields.Integer(required=True)


class StatusChanged(Schema):
    person_ref = fields.String(required=True)
    ledger_ids = fields.List(fields.String(), required=True)
    before = fields.Dict(required=True)
    after = fields.Dict(required=True)
    changed = fields.List(fields.String(), required=True)  # code_status | test_result | vaccination


class ChallengeSent(Schema):
    challenge_id = fields.String(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    subject_id = fields.String(required=True, allow_none=True)
    masked_phone = fields.String(required=True)
    expires_at = fields.String(required=True)


class IdentityVerified(Schema):
    challenge_id = fields.String(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    subject_id = fields.String(required=True, allow_none=True)
    person_ref = fields.String(required=True)


class IdentityRejected(Schema):
    challenge_id = fields.String(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    subject_id = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True)
    message = fields.String(required=True)


@dataclass(frozen=True)
class Contract:
    source: str
    name: str
    schema: type[Schema]
    subscribers: tuple[tuple[str, str], ...] = field(default=())

    @property
    def event_type(self) -> str:
        return f"{self.source}.{self.name}"

    def queue_name(self, service: str, method: str) -> str:
        """The queue Nameko's ``event_handler`` declares for a SERVICE_POOL handler."""
        return f"evt-{self.source}-{self.name}--{service}.{method}"

    def dump(self, data: dict) -> dict:
        """Validate outgoing data against the contract; raises ValidationError."""
        schema = self.schema()
        errors = schema.validate(data)
        if errors:
            from marshmallow import ValidationError

            raise ValidationError(errors)
        return schema.dump(data)

    def load(self, data: dict) -> dict:
        # fields a newer producer added are ignored, so rolling deploys keep working
        return self.schema().load(data, unknown=EXCLUDE)


CONTRACTS: dict[str, Contract] = {
    c.event_type: c
    for c in [
        Contract("org", "ledger_registered", LedgerRegistered, (("verify", "on_ledger_registered"),)),
        Contract(
            "org", "ledger_activated", LedgerActivated,
            (("member", "on_ledger_activated"), ("healthsync", "on_ledger_activated")),
        ),
        Contract("org", "qr_rotated", QrRotated, (("member", "on_qr_rotated"),)),
        Contract(
            "org", "rules_changed", RulesChanged, (("healthsync", "on_rules_changed"),),
        ),
        Contract(
            "org", "admin_added", AdminAdded,
            (("member", "on_admin_added"), ("healthsync", "on_admin_added")),
        ),
        Contract(
            "org", "admin_removed", AdminRemoved,
            (("member", "on_admin_removed"), ("healthsync", "on_admin_removed")),
        ),
        Contract("org", "admin_invited", AdminInvited, (("verify", "on_admin_invited"),)),
        Contract(
            "org", "ledger_closed", LedgerClosed,
            (("member", "on_ledger_closed"), ("healthsync", "on_ledger_closed")),
        ),
        Contract("member", "join_requested", JoinRequested, (("verify", "on_join_requested"),)),
        Contract("member", "joined", MemberJoined, (("healthsync", "on_member_joined"),)),
        Contract("member", "left", MemberLeft, (("healthsync", "on_member_left"),)),
        Contract("healthsync", "ledger_work", LedgerWork, (("healthsync", "on_ledger_work"),)),
        Contract("healthsync", "run_started", RunStarted),
        Contract("healthsync", "ledger_synced", LedgerSynced),
        Contract("healthsync", "run_finished", RunFinished),
        Contract("healthsync", "status_changed", StatusChanged),
        Contract("verify", "challenge_sent", ChallengeSent),
        Contract(
            "verify", "identity_verified", IdentityVerified,
            (("org", "on_identity_verified"), ("member", "on_identity_verified")),
        ),
        Contract(
            "verify", "identity_rejected", IdentityRejected,
            (("org", "on_identity_rejected"), ("member", "on_identity_rejected")),
        ),
    ]
}


def contract(event_type: str) -> Contract:
    return CONTRACTS[event_type]


def published_by(service: str) -> list[Contract]:
    return [c for c in CONTRACTS.values() if c.source == service]
