"""Routing by purpose: ``verify.identity_verified`` and ``identity_rejected`` carry their
purpose in the routing key, and each subscriber binds to the purposes it takes, so a
join's verification never reaches org. Should one arrive all the same (a queue still
bound from before routing), it is acked without a transaction."""

import uuid

import pytest

from shared.events import CONTRACTS, ORG_PURPOSES, PURPOSES, contract
from shared.handling import handle

VERIFIED = contract("verify.identity_verified")


class NoDatabase:
    name = "org"

    @property
    def db(self):
        raise AssertionError("the handler touched the database")


def verified(purpose: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "data": {
        "challenge_id": str(uuid.uuid4()), "purpose": purpose, "subject_id": None, "person_ref": "r" * 64}}


def on_identity_verified(service, data, envelope):
    raise AssertionError("called")


@pytest.mark.parametrize("purpose", sorted(set(PURPOSES) - set(ORG_PURPOSES)))
def test_an_event_the_handler_does_not_take_touches_nothing(purpose):
    handle(NoDatabase(), VERIFIED, on_identity_verified, verified(purpose))


def test_an_event_the_handler_takes_goes_to_its_transaction():
    with pytest.raises(AssertionError, match="touched the database"):
        handle(NoDatabase(), VERIFIED, on_identity_verified, verified("ledger_registration"))


def test_the_routing_key_ends_with_the_purpose_and_each_subscriber_binds_to_its_own():
    assert VERIFIED.routing_key(verified("join")["data"]) == "identity_verified.join"
    keys = {s.service: VERIFIED.binding_keys(s.only) for s in VERIFIED.subscribers}
    assert keys == {
        "org": [f"identity_verified.{p}" for p in ORG_PURPOSES],
        "member": ["identity_verified.join"],
    }
    assert VERIFIED.binding_keys() == ["identity_verified.*"]  # a broadcast listener: all
    # an unrouted event keeps its plain name, as Nameko's own handlers bind it
    registered = contract("org.ledger_registered")
    assert registered.routing_key({}) == "ledger_registered"
    assert registered.binding_keys() == ["ledger_registered"]


def test_only_an_event_someone_takes_must_be_delivered():
    assert VERIFIED.has_subscriber_for(verified("join")["data"])
    assert VERIFIED.has_subscriber_for(verified("reconfirm")["data"])
    assert not VERIFIED.has_subscriber_for(verified("login")["data"])  # nobody acts on a login


def test_subscribers_take_only_purposes_of_events_routed_by_purpose():
    for c in CONTRACTS.values():
        for s in c.subscribers:
            if s.only:  # a purpose is one word of a routing key: no dots, no wildcards
                assert c.route_by == "purpose", f"{c.event_type}: {s.service} takes values of an unrouted event"
                assert set(s.only) <= set(PURPOSES)
