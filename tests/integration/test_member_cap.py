"""An operator changes a ledger's member cap, as plain code on the real PostgreSQL:
org checks the value and the ledger and writes ``org.member_cap_changed`` with the
change; member applies the latest change whatever order the events arrive in."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.member import memberships
from services.member.models import LedgerView
from services.org import ledgers
from services.org.models import Ledger
from shared.config import load_settings
from shared.crypto import Crypto
from shared.errors import Conflict, InvalidInput, NotFound
from shared.outbox import _OUTBOX_TABLES
from tests.e2e.flows import application
from tests.integration.support import migrated_engine
from tests.people import person

CFG = load_settings({})
ORG_OUTBOX = _OUTBOX_TABLES["org"]


@pytest.fixture(scope="module")
def engine():
    with migrated_engine() as engine:
        yield engine


def active_ledger(session: Session) -> str:
    ledger_id = ledgers.register_ledger(session, Crypto(CFG), application(person("邹测试")))["ledger_id"]
    session.get(Ledger, ledger_id).status = "active"
    session.flush()
    return ledger_id


def test_org_changes_an_active_ledgers_cap_and_says_so_in_its_outbox(engine):
    with Session(engine) as session:
        ledger_id = active_ledger(session)
        changed = ledgers.set_member_cap(session, ledger_id, 25_000)
        session.commit()
        assert changed["member_cap"] == 25_000 and changed["was"] == 10_000
        assert session.get(Ledger, ledger_id).member_cap == 25_000
        [event] = session.scalars(
            select(ORG_OUTBOX.c.payload).where(
                ORG_OUTBOX.c.aggregate_id == ledger_id, ORG_OUTBOX.c.event_type == "org.member_cap_changed"
            )
        ).all()
        assert event["data"]["member_cap"] == 25_000 and event["data"]["ledger_id"] == ledger_id


@pytest.mark.parametrize("bad", [0, -5, 1_000_001, "100", 2.5, True, None])
def test_a_cap_that_is_not_a_whole_number_in_range_is_refused_and_changes_nothing(engine, bad):
    with Session(engine) as session:
        ledger_id = active_ledger(session)
        with pytest.raises(InvalidInput) as refused:
            ledgers.set_member_cap(session, ledger_id, bad)
        assert refused.value.field == "member_cap"
        assert session.get(Ledger, ledger_id).member_cap == 10_000
        session.rollback()


def test_an_unknown_or_closed_ledger_is_refused(engine):
    with Session(engine) as session:
        with pytest.raises(NotFound):
            ledgers.set_member_cap(session, str(uuid.uuid4()), 50)
        with pytest.raises(NotFound):
            ledgers.set_member_cap(session, "not-a-ledger-id", 50)
        ledger_id = active_ledger(session)
        session.get(Ledger, ledger_id).status = "closed"
        with pytest.raises(Conflict):
            ledgers.set_member_cap(session, ledger_id, 50)
        session.rollback()


def test_member_keeps_the_latest_change_whatever_the_delivery_order(engine):
    ledger_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    with Session(engine) as session:
        memberships.learn_ledger(
            session, Crypto(CFG), {"ledger_id": ledger_id, "org_name": "测试单位", "qr_version": 1, "member_cap": 100}
        )
        later = {"ledger_id": ledger_id, "member_cap": 300, "changed_at": now.isoformat()}
        earlier = {"ledger_id": ledger_id, "member_cap": 200, "changed_at": (now - timedelta(seconds=5)).isoformat()}
        memberships.member_cap_changed(session, later)
        memberships.member_cap_changed(session, earlier)  # delivered late
        assert session.get(LedgerView, ledger_id).member_cap == 300
        session.rollback()


def test_a_change_for_a_ledger_member_has_not_heard_of_is_retried_later(engine):
    # (its activation is still on the way: raising makes the handler retry)
    with Session(engine) as session, pytest.raises(NotFound):
        memberships.member_cap_changed(
            session, {"ledger_id": str(uuid.uuid4()), "member_cap": 5, "changed_at": datetime.now(timezone.utc).isoformat()}
        )
