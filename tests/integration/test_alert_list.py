"""An admin's alert list and its unread count agree, on the real PostgreSQL, even when a
check writes an alert while the list is being read (the admin polls while checks run)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from services.healthsync import alerts
from services.healthsync.models import Alert
from tests.integration.support import migrated_engine


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
