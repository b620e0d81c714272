"""``@handles(..., when=...)``: an event that is not the handler's concern is acked
without a transaction (a join's verification costs org nothing)."""

import uuid

import pytest

from services.org.service import ORG_PURPOSES
from shared.events import PURPOSES, contract
from shared.handling import handle


class NoDatabase:
    name = "org"

    @property
    def db(self):
        raise AssertionError("the handler touched the database")


def verified(purpose: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "data": {
        "challenge_id": str(uuid.uuid4()), "purpose": purpose, "subject_id": None, "person_ref": "r" * 64}}


@pytest.mark.parametrize("purpose", sorted(set(PURPOSES) - set(ORG_PURPOSES)))
def test_an_event_the_handler_does_not_want_touches_nothing(purpose):
    called = []
    handle(NoDatabase(), contract("verify.identity_verified"), lambda s, d, e: called.append(d), verified(purpose),
           when=lambda d: d["purpose"] in ORG_PURPOSES)
    assert called == []


def test_an_event_the_handler_wants_goes_to_its_transaction():
    with pytest.raises(AssertionError, match="touched the database"):
        handle(NoDatabase(), contract("verify.identity_verified"), lambda s, d, e: None,
               verified("ledger_registration"), when=lambda d: d["purpose"] in ORG_PURPOSES)
