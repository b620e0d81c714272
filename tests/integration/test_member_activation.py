"""Activation of a pending membership, as plain code on the real PostgreSQL: one
statement (``memberships.ACTIVATE``) checks everything the verification must match and
that the ledger is still open. A test per condition, so dropping one fails here."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import services.member.models  # noqa: F401 - registers the member outbox
from services.member import memberships
from services.member.models import LedgerView, Membership
from shared import join_links
from shared.config import load_settings
from shared.consent import CONSENT_VERSION
from shared.crypto import Crypto
from shared.outbox import _OUTBOX_TABLES
from tests.integration.support import migrated_engine
from tests.people import person

CFG = load_settings({})
OUTBOX = _OUTBOX_TABLES["member"]


@pytest.fixture(scope="module")
def engine():
    with migrated_engine() as engine:
        yield engine


@pytest.fixture
def pending(engine):
    """A session and a pending join: (session, crypto, membership_id, challenge_id, person_ref)."""
    crypto = Crypto(CFG)
    ledger_id = str(uuid.uuid4())
    with Session(engine) as session:
        memberships.learn_ledger(
            session, crypto, {"ledger_id": ledger_id, "org_name": "测试单位", "qr_version": 1, "member_cap": 100}
        )
        p = person("钟测")
        joined = memberships.request_join(
            session, crypto, CFG.qr_signing_key, join_links.make_token(CFG.qr_signing_key, ledger_id, 1),
            {"name": p.name, "id_type": "resident_id", "id_number": p.id_number, "phone": p.phone,
             "consent": True, "consent_version": CONSENT_VERSION},
        )
        session.commit()
        yield session, crypto, joined["membership_id"], joined["challenge_id"], crypto.person_ref(
            "resident_id", p.id_number
        )


def status(session, membership_id):
    return session.scalar(select(Membership.status).where(Membership.id == membership_id))


def joined_events(session, membership_id):
    return session.scalar(
        select(func.count()).select_from(OUTBOX)
        .where(OUTBOX.c.event_type == "member.joined", OUTBOX.c.aggregate_id == membership_id)
    )


def test_the_verification_of_a_pending_join_activates_it_and_says_so(pending):
    session, crypto, membership_id, challenge_id, person_ref = pending
    assert memberships.activate(session, crypto, membership_id, challenge_id, person_ref)
    session.commit()
    assert status(session, membership_id) == "active" and joined_events(session, membership_id) == 1
    # a redelivered verification changes nothing more
    assert not memberships.activate(session, crypto, membership_id, challenge_id, person_ref)
    assert joined_events(session, membership_id) == 1


@pytest.mark.parametrize("wrong", ["challenge", "person", "membership"])
def test_a_verification_of_something_else_activates_nothing(pending, wrong):
    session, crypto, membership_id, challenge_id, person_ref = pending
    other = str(uuid.uuid4())
    args = {
        "challenge": (membership_id, other, person_ref),
        "person": (membership_id, challenge_id, "f" * 64),
        "membership": (other, challenge_id, person_ref),
    }[wrong]
    assert not memberships.activate(session, crypto, *args)
    session.commit()
    assert status(session, membership_id) == "pending" and joined_events(session, membership_id) == 0


def test_a_join_to_a_ledger_that_closed_meanwhile_is_not_activated(pending):
    session, crypto, membership_id, challenge_id, person_ref = pending
    ledger_id = session.scalar(select(Membership.ledger_id).where(Membership.id == membership_id))
    # the projection says closed (its key still there): the ledger's status alone refuses
    session.execute(update(LedgerView).where(LedgerView.ledger_id == ledger_id).values(status="closed"))
    assert not memberships.activate(session, crypto, membership_id, challenge_id, person_ref)
    session.commit()
    assert status(session, membership_id) == "pending" and joined_events(session, membership_id) == 0
