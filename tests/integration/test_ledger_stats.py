"""The ledger's stats are counted in SQL (abnormal_sql) and each member is judged in Python
(evaluator): over varied health records and every kind of rule, the two agree."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from services.healthsync import ledger_view
from services.healthsync.models import LedgerRules, Member, Snapshot
from shared.health import DEFAULT_RULES
from shared.migrate import upgrade_all
from tests.conftest import create_database, drop_database

RULE_SETS = [
    DEFAULT_RULES,
    {**DEFAULT_RULES, "max_test_age_hours": 24, "min_vaccination": "booster"},
    {**DEFAULT_RULES, "max_test_age_hours": None, "require_green_code": False, "popup_is_abnormal": False},
    {**DEFAULT_RULES, "max_test_age_hours": 168, "min_vaccination": "primary", "popup_is_abnormal": False},
]


@pytest.fixture(scope="module")
def ledger():
    url = create_database()
    upgrade_all(url)
    engine = create_engine(url)
    rng = random.Random(7)
    ledger_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    members, snapshots = [], []
    for _ in range(400):
        ref = uuid.uuid4().hex
        members.append({"membership_id": str(uuid.uuid4()), "ledger_id": ledger_id, "person_ref": ref, "joined_at": now})
        if rng.random() < 0.1:
            continue  # not checked yet
        sampled = None if rng.random() < 0.1 else now - timedelta(hours=rng.uniform(0, 200))
        snapshots.append({
            "person_ref": ref,
            "code_status": rng.choice(["green"] * 6 + ["yellow", "red", "unknown"]),
            "popup": rng.choice([None] * 8 + ["弹窗一"]),
            "last_test_sampled_at": sampled,
            "last_test_result": None if sampled is None else rng.choice(["negative"] * 6 + ["positive", "pending"]),
            "pending_seen_at": None,
            "vaccination": rng.choice(["booster", "primary", "incomplete", "unsuitable", "none_found"]),
            "checked_at": now,
            "stale_since": now if rng.random() < 0.05 else None,
        })
    with Session(engine) as session:
        session.execute(insert(Member), members)
        session.execute(insert(Snapshot), snapshots)
        session.commit()
    yield engine, ledger_id
    engine.dispose()
    drop_database(url)


@pytest.mark.parametrize("rules", RULE_SETS)
def test_sql_counts_agree_with_the_python_rules(ledger, rules):
    engine, ledger_id = ledger
    with Session(engine) as session:
        session.merge(LedgerRules(ledger_id=ledger_id, org_name="x", **rules))
        session.commit()
        stats = ledger_view.stats(session, ledger_id)
        at = datetime.now(timezone.utc)
        rows = ledger_view.ledger_rows(session, ledger_id)
        reasons_of = ledger_view.evaluator(rules, at)
    present = [r for r in rows if r.code_status is not None]
    assert stats["members_total"] == len(rows)
    assert stats["abnormal"] == sum(1 for r in rows if reasons_of(r))
    assert stats["stale"] == sum(1 for r in present if r.stale_since is not None)
    for bucket, n in stats["test_age"].items():
        assert n == sum(1 for r in rows if ledger_view.test_age_bucket(r if r.code_status else None, at) == bucket), bucket
    for colour, n in stats["code_status"].items():
        expected = sum(1 for r in rows if (r.code_status if r.code_status in ("green", "yellow", "red") else "unknown") == colour)
        assert n == expected, colour
    assert 0 < stats["abnormal"] < len(rows)


FILTERS = [
    {"abnormal": "true"}, {"abnormal": "false"}, {"code_status": "unknown"}, {"code_status": "yellow"},
    {"test_age": "h48"}, {"test_age": "none"}, {"test_age": "pending"}, {"test_age": "older"},
    {"test_older_than_hours": "30"}, {"no_test": "true"}, {"no_test": "false"}, {"vaccination": "primary"},
    {"abnormal": "true", "vaccination": "booster", "order": "asc"}, {"joined_from": "2000-01-01"},
    {"joined_to": "2000-01-01"},
]


@pytest.mark.parametrize("args", FILTERS)
@pytest.mark.parametrize("rules", RULE_SETS[:2])
def test_sql_filters_agree_with_the_python_filters(ledger, rules, args):
    from shared.ledger_filters import parse_filters

    engine, ledger_id = ledger
    f = parse_filters({**args, "page_size": "200"})
    with Session(engine) as session:
        session.merge(LedgerRules(ledger_id=ledger_id, org_name="x", **rules))
        session.commit()
        at = datetime.now(timezone.utc)
        found = ledger_view._query_in_sql(session, ledger_id, f, rules, at)
        reasons_of = ledger_view.evaluator(rules, at)
        expected = [r for r in ledger_view.ledger_rows(session, ledger_id) if ledger_view._keep(r, bool(reasons_of(r)), f, at)]
    expected.sort(key=lambda r: (r.joined_at, r.membership_id), reverse=f["order"] == "desc")
    assert found["total"] == len(expected)
    assert [i["member_id"] for i in found["items"]] == [r.membership_id for r in expected[:200]]


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sorting_by_test_days_breaks_ties_by_the_sample_time(ledger, order):
    """Many members share a day count; on the same day the earlier sample counts as the
    longer wait, so the order never depends on the time of day or on random ids."""
    from shared.ledger_filters import parse_filters

    engine, ledger_id = ledger
    with Session(engine) as session:
        found = ledger_view.query(session, ledger_id, parse_filters({"sort": "test_days", "order": order}), everything=True)
        sampled = {r.membership_id: r.last_test_sampled_at for r in ledger_view.ledger_rows(session, ledger_id)}
    keys = [(i["test_days"], sampled[i["member_id"]]) for i in found["items"]]
    known = [k for k in keys if k[1] is not None]
    assert all(k[1] is None for k in keys[len(known):]), "no test on record comes last"
    days = [d for d, _ in known]
    assert len(set(days)) < len(days), "the ledger must have ties to break"
    if order == "desc":
        expected = sorted(known, key=lambda k: (-k[0], k[1]))
    else:
        expected = sorted(known, key=lambda k: (k[0], -k[1].timestamp()))
    assert known == expected
