"""An admin's alert list and its unread count agree, on the real PostgreSQL, even when a
check writes an alert while the list is being read (the admin polls while checks run).
And which alerts a check writes: a member already abnormal (an old test, under a test
rule most of a ledger fails) who gets a new problem is news too."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from services.healthsync import alerts
from services.healthsync.comparison import Comparison
from services.healthsync.models import Alert, Member, Snapshot, Subject
from shared.config import load_settings
from shared.crypto import Crypto
from shared.healthkit import HealthRecord
from tests.integration.support import migrated_engine
from tests.people import person

CFG = load_settings({})


@pytest.fixture(scope="module")
def engine():
    with migrated_engine() as engine:
        yield engine


def _alert(conn, ledger_id: str, kind: str) -> None:
    conn.execute(insert(Alert).values(ledger_id=ledger_id, membership_id=str(uuid.uuid4()), kind=kind,
                                      reasons=["code_not_green"]))


def test_an_alert_written_while_the_list_is_read_is_in_both_or_neither(engine):
    ledger_id, admin = str(uuid.uuid4()), "admin-ref"
    with engine.begin() as conn:
        _alert(conn, ledger_id, "became_abnormal")
    with Session(engine) as s:
        alerts.mark_read(s, ledger_id, admin, None)
        s.commit()

    # a check commits a new alert right after the listing's first statement
    written = []

    def check_writes(conn, cursor, statement, parameters, context, executemany):
        if not written:
            written.append(True)
            with engine.begin() as other:
                _alert(other, ledger_id, "back_to_normal")

    with Session(engine) as s:
        connection = s.connection()
        event.listen(connection, "after_cursor_execute", check_writes)
        try:
            listed = alerts.list_alerts(s, ledger_id, admin)
        finally:
            event.remove(connection, "after_cursor_execute", check_writes)
    assert written
    assert listed["unread"] == sum(not item["read"] for item in listed["items"])

    with Session(engine) as s:
        now = alerts.list_alerts(s, ledger_id, admin)
    assert [i["kind"] for i in now["items"]] == ["back_to_normal", "became_abnormal"]
    assert now["unread"] == 1 and [i["read"] for i in now["items"]] == [False, True]


def test_a_ledger_without_alerts_has_none_unread(engine):
    with Session(engine) as s:
        assert alerts.list_alerts(s, str(uuid.uuid4()), "admin-ref") == {"items": [], "unread": 0, "digest": False}


# -- which alerts a check writes ---------------------------------------------------------

NOW = datetime.now(timezone.utc)
RECENT, OLD = NOW - timedelta(hours=3), NOW - timedelta(days=5)  # within / past the default 72 h rule


def _record(code_status: str = "green", sampled_at: datetime | None = RECENT, result: str = "negative") -> dict:
    return {"code_status": code_status, "popup": None, "last_test_sampled_at": sampled_at,
            "last_test_result": result if sampled_at else None, "vaccination": "booster"}


class HealthKitNow:
    """Answers each ID number with the record it was given."""

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}

    def bulk_status(self, id_numbers):
        return {n: HealthRecord(id_number=n, updated_at=None, **self.records[n]) for n in id_numbers}


def _member(s: Session, crypto: Crypto, kit: HealthKitNow, ledger_id: str, was: dict, now: dict) -> tuple[str, str]:
    """A member of the ledger whose last check found ``was`` and whom the Health Kit
    now answers with ``now``; (person_ref, membership_id)."""
    p = person()
    ref, membership_id = crypto.person_ref("resident_id", p.id_number), str(uuid.uuid4())
    s.execute(insert(Subject).values(person_ref=ref, id_type="resident_id",
                                     id_number_enc=crypto.master.encrypt_text(p.id_number, aad=ref.encode())))
    s.execute(insert(Member).values(membership_id=membership_id, ledger_id=ledger_id, person_ref=ref,
                                    joined_at=NOW - timedelta(days=7)))
    s.execute(insert(Snapshot).values(person_ref=ref, checked_at=NOW - timedelta(hours=1), **was))
    kit.records[p.id_number] = now
    return ref, membership_id


def test_a_check_alerts_on_what_got_worse_for_a_member_already_abnormal(engine):
    crypto, kit, ledger_id, admin = Crypto(CFG), HealthKitNow(), str(uuid.uuid4()), "admin-ref"
    with Session(engine) as s:
        people = {
            # abnormal for an old test, and the health code turns red
            "turns_red": _member(s, crypto, kit, ledger_id, _record(sampled_at=OLD), _record("red", OLD)),
            # abnormal for an old test, and a new test is positive
            "positive": _member(s, crypto, kit, ledger_id, _record(sampled_at=OLD), _record(result="positive")),
            # abnormal for having no test; an old test record turns up: nothing new
            "old_test_found": _member(s, crypto, kit, ledger_id, _record(sampled_at=None), _record(sampled_at=OLD)),
            # abnormal red, and a recent test replaces the old one: better, not worse
            "tested": _member(s, crypto, kit, ledger_id, _record("red", OLD), _record("red", RECENT)),
            # normal, and the health code turns red
            "normal_turns_red": _member(s, crypto, kit, ledger_id, _record(), _record("red")),
            # red, and green again
            "green_again": _member(s, crypto, kit, ledger_id, _record("red"), _record()),
        }
        s.commit()
    with Session(engine) as s:
        Comparison(s, crypto, kit, CFG).check_people([ref for ref, _ in people.values()])
        s.commit()

    with Session(engine) as s:
        written = s.execute(select(Alert.membership_id, Alert.kind, Alert.reasons).where(Alert.ledger_id == ledger_id)).all()
        listed = alerts.list_alerts(s, ledger_id, admin)
        alerts.set_digest(s, ledger_id, admin, True)
        digests = [d for d in alerts.due_digests(s) if d["ledger_id"] == ledger_id]
    by_member = {}
    for membership_id, kind, reasons in written:
        by_member.setdefault(membership_id, []).append((kind, reasons))
    alert_of = {name: by_member.get(membership_id, []) for name, (_, membership_id) in people.items()}
    assert alert_of["turns_red"] == [("worsened", ["code_not_green"])]  # only what is new, not test_too_old
    assert alert_of["positive"] == [("worsened", ["test_positive"])]
    assert alert_of["old_test_found"] == []
    assert alert_of["tested"] == []
    assert alert_of["normal_turns_red"] == [("became_abnormal", ["code_not_green"])]
    assert alert_of["green_again"] == [("back_to_normal", ["code_not_green"])]

    # the admin's list reads the new kind with its reasons' words, and counts it unread
    worsened = [i for i in listed["items"] if i["member_id"] == people["turns_red"][1]]
    assert [(i["kind"], [r["label"] for r in i["reasons"]]) for i in worsened] == [("worsened", ["健康码非绿码"])]
    assert listed["unread"] == len(written) == len(listed["items"])
    # and the daily SMS digest counts it with the others
    assert [d["count"] for d in digests] == [len(written)]
