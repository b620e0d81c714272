"""Event contracts: every event on the bus, in one place.

An event is a fact in the past tense, published by the service that owns it through
that service's transactional outbox (``shared.outbox``) and consumed by the handlers
listed here (``shared.handling.handles``). Each contract names its marshmallow schema
and its durable subscribers, so a relay can declare their queues before anything is
published (an event with no queue is dropped) and a test can check that the
subscribers listed here are exactly the handlers the services declare.

An event whose contract has ``route_by`` carries that field's value as the last word
of its routing key (``identity_verified.join``), and a subscriber that takes only some
values binds its queue to those alone: the broker, not the handler, drops the rest (a
join's verification never reaches org, which would only have acked it).

Personal data never travels in plaintext: where a consumer needs an ID number or a
phone, the field holds a token sealed for that consumer (``Crypto.seal``).

The envelope every message carries::

    {"event_id": uuid, "event_type": "org.ledger_registered",
     "occurred_at": iso-8601, "aggregate_id": str, "data": {...}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from marshmallow import EXCLUDE, Schema, fields, validate

PURPOSES = ("ledger_registration", "join", "login", "reconfirm", "admin_invite")
# the verifications org acts on (the rest are member's, or nobody's: a login)
ORG_PURPOSES = ("ledger_registration", "admin_invite", "reconfirm")


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
    # who the owner is among the ledger's admins, as the owner's admins list shows them
    # (the access log records them so): the admin's id and masked phone (138****5678)
    owner_admin_id = fields.String(load_default=None, allow_none=True)
    owner_phone = fields.String(load_default="")


class MemberCapChanged(Schema):
    ledger_id = fields.String(required=True)
    member_cap = fields.Integer(required=True, validate=validate.Range(min=1))
    changed_at = fields.String(required=True)  # ISO time: a later change wins, whatever the delivery order


class RulesChanged(Schema):
    ledger_id = fields.String(required=True)
    rules = fields.Dict(required=True)


class AdminAdded(Schema):
    ledger_id = fields.String(required=True)
    person_ref = fields.String(required=True)
    role = fields.String(required=True)  # owner | co_admin
    masked_name = fields.String(required=True)
    admin_id = fields.String(load_default=None, allow_none=True)
    masked_phone = fields.String(load_default="")  # 138****5678, as the admins list shows it


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
    # the challenge of the same person's earlier request this one replaced: its code ends
    replaces = fields.String(load_default=None, allow_none=True)
    # the ledger cannot take this request (one of JOIN_ANSWERS): check the details,
    # then answer so, sending no code
    answer = fields.String(load_default=None, allow_none=True)


#: what member may ask verify to answer a join request with, once the Health Kit agrees
#: with its details, instead of sending a code (the gateway answers them as 409)
JOIN_ANSWERS = ("already_member", "join_in_progress")


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


class Subscriber(NamedTuple):
    service: str
    method: str
    # with a contract's route_by: the values it takes (empty: every one)
    only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    source: str
    name: str
    schema: type[Schema]
    subscribers: tuple[Subscriber, ...] = field(default=())
    # a data field whose value (one word) ends the routing key, for subscribers to bind by
    route_by: str | None = None

    @property
    def event_type(self) -> str:
        return f"{self.source}.{self.name}"

    def subscriber(self, service: str, method: str) -> Subscriber | None:
        """The listed subscriber, or None (e.g. the gateway's broadcast listeners)."""
        return next((s for s in self.subscribers if (s.service, s.method) == (service, method)), None)

    def routing_key(self, data: dict) -> str:
        return f"{self.name}.{data[self.route_by]}" if self.route_by else self.name

    def binding_keys(self, only: tuple[str, ...] = ()) -> list[str]:
        """The routing keys a queue binds to, to receive this event (of ``only``'s
        values, if given)."""
        if not self.route_by:
            return [self.name]
        return [f"{self.name}.{value}" for value in only] if only else [f"{self.name}.*"]

    def takes(self, subscriber: Subscriber | None, data: dict) -> bool:
        """Whether this subscriber (an unlisted one takes all) wants this event."""
        return not (self.route_by and subscriber and subscriber.only) or data.get(self.route_by) in subscriber.only

    def has_subscriber_for(self, data: dict) -> bool:
        """Whether a durable queue must receive this event (else it may go nowhere)."""
        return any(self.takes(s, data) for s in self.subscribers)

    def queue_name(self, service: str, method: str) -> str:
        """The queue Nameko's ``event_handler`` declares for a SERVICE_POOL handler."""
        return f"evt-{self.source}-{self.name}--{service}.{method}"

    @cached_property
    def _schema(self) -> Schema:
        # one instance, reused: it keeps no state between calls, and building one costs
        # more than validating an event with it
        return self.schema()

    def dump(self, data: dict) -> dict:
        """Validate outgoing data against the contract; raises ValidationError."""
        errors = self._schema.validate(data)
        if errors:
            from marshmallow import ValidationError

            raise ValidationError(errors)
        return self._schema.dump(data)

    def load(self, data: dict) -> dict:
        # fields a newer producer added are ignored, so rolling deploys keep working
        return self._schema.load(data, unknown=EXCLUDE)


CONTRACTS: dict[str, Contract] = {
    c.event_type: c
    for c in [
        Contract("org", "ledger_registered", LedgerRegistered, (Subscriber("verify", "on_ledger_registered"),)),
        Contract(
            "org", "ledger_activated", LedgerActivated,
            (Subscriber("member", "on_ledger_activated"), Subscriber("healthsync", "on_ledger_activated")),
        ),
        Contract("org", "qr_rotated", QrRotated, (Subscriber("member", "on_qr_rotated"),)),
        Contract("org", "member_cap_changed", MemberCapChanged, (Subscriber("member", "on_member_cap_changed"),)),
        Contract(
            "org", "rules_changed", RulesChanged, (Subscriber("healthsync", "on_rules_changed"),),
        ),
        Contract(
            "org", "admin_added", AdminAdded,
            (Subscriber("member", "on_admin_added"), Subscriber("healthsync", "on_admin_added")),
        ),
        Contract(
            "org", "admin_removed", AdminRemoved,
            (
                Subscriber("member", "on_admin_removed"), Subscriber("healthsync", "on_admin_removed"),
                Subscriber("verify", "on_admin_removed"),
            ),
        ),
        Contract("org", "admin_invited", AdminInvited, (Subscriber("verify", "on_admin_invited"),)),
        Contract(
            "org", "ledger_closed", LedgerClosed,
            (
                Subscriber("member", "on_ledger_closed"), Subscriber("healthsync", "on_ledger_closed"),
                Subscriber("verify", "on_ledger_closed"),
            ),
        ),
        Contract("member", "join_requested", JoinRequested, (Subscriber("verify", "on_join_requested"),)),
        Contract("member", "joined", MemberJoined, (Subscriber("healthsync", "on_member_joined"),)),
        Contract(
            "member", "left", MemberLeft,
            (Subscriber("healthsync", "on_member_left"), Subscriber("verify", "on_member_left")),
        ),
        Contract("healthsync", "ledger_work", LedgerWork, (Subscriber("healthsync", "on_ledger_work"),)),
        Contract("healthsync", "run_started", RunStarted),
        Contract("healthsync", "ledger_synced", LedgerSynced),
        Contract("healthsync", "run_finished", RunFinished),
        Contract("healthsync", "status_changed", StatusChanged),
        Contract("verify", "challenge_sent", ChallengeSent),
        Contract(
            "verify", "identity_verified", IdentityVerified,
            (
                Subscriber("org", "on_identity_verified", ORG_PURPOSES),
                Subscriber("member", "on_identity_verified", ("join",)),
            ),
            route_by="purpose",
        ),
        Contract(
            "verify", "identity_rejected", IdentityRejected,
            (
                Subscriber("org", "on_identity_rejected", ORG_PURPOSES),
                Subscriber("member", "on_identity_rejected", ("join",)),
            ),
            route_by="purpose",
        ),
    ]
}


def contract(event_type: str) -> Contract:
    return CONTRACTS[event_type]


def published_by(service: str) -> list[Contract]:
    return [c for c in CONTRACTS.values() if c.source == service]
