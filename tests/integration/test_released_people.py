"""Who a closed ledger leaves belonging nowhere, as member's plain code on the real
PostgreSQL (verify forgets their phones): the closed ledger's people, once member has
closed it itself, less those with a live membership elsewhere."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy.orm import Session

import services.member.models  # noqa: F401 - registers the member outbox
from services.member import memberships
from services.member.models import Membership
from shared.config import load_settings
from shared.crypto import Crypto
from shared.errors import Conflict
from tests.integration.support import migrated_engine

CFG = load_settings({})


@pytest.fixture(scope="module")
def engine():
    with migrated_engine() as engine:
        yield engine


def ledger(session: Session) -> str:
    ledger_id = str(uuid.uuid4())
    memberships.learn_ledger(
        session, Crypto(CFG), {"ledger_id": ledger_id, "org_name": "测试单位", "qr_version": 1, "member_cap": 100}
    )
    return ledger_id


def member(session: Session, ledger_id: str, person_ref: str, status: str = "active") -> None:
    session.add(Membership(
        id=str(uuid.uuid4()), ledger_id=ledger_id, person_ref=person_ref, status=status,
        challenge_id=str(uuid.uuid4()), id_type="resident_id", name_enc=b"x", consent_version="v",
        consented_at=datetime.now(timezone.utc),
    ))


def test_a_closed_ledger_leaves_only_people_with_no_live_membership_elsewhere_belonging_nowhere(engine):
    only_here, also_elsewhere, joining_elsewhere = (uuid.uuid4().hex for _ in range(3))
    with Session(engine) as session:
        closing, other = ledger(session), ledger(session)
        for ref in (only_here, also_elsewhere, joining_elsewhere):
            member(session, closing, ref)
        member(session, other, also_elsewhere)
        member(session, other, joining_elsewhere, status="pending")  # a join under way
        session.flush()
        with pytest.raises(Conflict):  # member has not closed it yet: verify asks again later
            memberships.people_of_closed_ledger(session, closing)
        memberships.ledger_closed(session, closing)
        people = memberships.people_of_closed_ledger(session, closing)
        assert sorted(people) == sorted([only_here, also_elsewhere, joining_elsewhere])
        assert sorted(memberships.belonging(session, people)) == sorted([also_elsewhere, joining_elsewhere])
        assert memberships.people_of_closed_ledger(session, str(uuid.uuid4())) == []  # never heard of
        session.rollback()
