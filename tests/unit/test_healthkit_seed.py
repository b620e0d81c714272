"""Synthetic residents for the Health Kit simulator, and the Health Kit value types.

The generator is checked on its own (valid, unique, realistic, deterministic); seeding
is checked against a real PostgreSQL database of its own (seed_if_empty needs an
empty store, which the session database shared with other tests cannot promise).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.healthkit import (
    CODE_STATUS_LABELS,
    CODE_STATUSES,
    POPUP_KINDS,
    VACCINATION_LABELS,
    VACCINATIONS,
    Change,
    HealthRecord,
)
from shared.healthkit.seed import (
    BEIJING_REGIONS,
    DEMO_RESIDENTS,
    MOBILE_PREFIXES,
    OTHER_REGIONS,
    SURNAMES,
    demo_records,
    seed,
    seed_if_empty,
    synthetic_residents,
)
from shared.healthkit.simulator import make_store_engine
from shared.validation import validate_phone, validate_resident_id
from tests.conftest import create_database, drop_database

NOW = datetime(2022, 6, 1, 4, 0, tzinfo=timezone.utc)
N = 20_000


@pytest.fixture(scope="module")
def people():
    return list(synthetic_residents(N, rng_seed=12345, now=NOW))


def test_generated_ids_are_valid_resident_ids(people):
    regions = set(BEIJING_REGIONS) | set(OTHER_REGIONS)
    for person in people:
        assert validate_resident_id(person.id_number) == person.id_number
        assert person.id_type == "resident_id"
        assert person.id_number[:6] in regions
        born = date(
            int(person.id_number[6:10]), int(person.id_number[10:12]), int(person.id_number[12:14])
        )
        assert date(1945, 1, 1) <= born <= date(2015, 12, 31)
        assert person.id_number[14:17] != "000"


def test_generated_phones_are_mainland_mobiles(people):
    for person in people:
        assert validate_phone(person.phone) == person.phone
        assert len(person.phone) == 11
        assert person.phone[:3] in MOBILE_PREFIXES


def test_ids_and_phones_are_unique_and_avoid_the_demo_people(people):
    ids = [p.id_number for p in people]
    phones = [p.phone for p in people]
    assert len(set(ids)) == len(ids) == N
    assert len(set(phones)) == len(phones) == N
    assert not {d.id_number for d in DEMO_RESIDENTS} & set(ids)
    assert not {d.phone for d in DEMO_RESIDENTS} & set(phones)


def test_names_look_chinese(people):
    two_char_given = 0
    for person in people:
        surname = next(s for s in sorted(SURNAMES, key=len, reverse=True) if person.name.startswith(s))
        given = person.name[len(surname):]
        assert 1 <= len(given) <= 2
        two_char_given += len(given) == 2
    assert 0.6 < two_char_given / N < 0.8
    top = [name for name, _ in Counter(p.name[0] for p in people).most_common(3)]
    assert set(top) == {"王", "李", "张"}


def test_health_states_are_spread_as_asked(people):
    share = lambda pred: sum(1 for p in people if pred(p)) / N  # noqa: E731
    assert share(lambda p: p.code_status == "green" and p.popup is None) == pytest.approx(
        0.90, abs=0.015
    )
    assert share(lambda p: p.code_status == "yellow") == pytest.approx(0.06, abs=0.01)
    assert share(lambda p: p.code_status == "red") == pytest.approx(0.021, abs=0.006)
    assert share(lambda p: p.popup is not None) == pytest.approx(0.02, abs=0.006)
    assert {p.popup for p in people if p.popup} == set(POPUP_KINDS)
    assert all(p.code_status in CODE_STATUSES for p in people)

    results = Counter(p.last_test_result for p in people)
    assert results[None] / N == pytest.approx(0.03, abs=0.008)
    assert results["pending"] / N == pytest.approx(0.07, abs=0.01)
    assert 0 < results["positive"] / N < 0.005
    assert results["negative"] / N > 0.85
    for p in people:
        assert (p.last_test_sampled_at is None) == (p.last_test_result is None)
        if p.last_test_sampled_at is not None:
            age = NOW - p.last_test_sampled_at
            assert timedelta(0) <= age <= timedelta(days=10)
            if p.last_test_result == "pending":
                assert age <= timedelta(hours=30)
        if p.last_test_result == "positive":
            assert p.code_status == "red"

    vaccinations = Counter(p.vaccination for p in people)
    assert set(vaccinations) == set(VACCINATIONS)
    assert (vaccinations["booster"] + vaccinations["primary"]) / N > 0.8
    assert vaccinations["booster"] > vaccinations["primary"]


def test_generation_is_deterministic_and_prefix_stable():
    first = list(synthetic_residents(500, rng_seed=7, now=NOW))
    again = list(synthetic_residents(1000, rng_seed=7, now=NOW))
    assert again[:500] == first
    other = list(synthetic_residents(500, rng_seed=8, now=NOW))
    assert other != first


def test_demo_residents_are_valid_and_healthy():
    assert [d.name for d in DEMO_RESIDENTS] == ["张伟", "李娜", "王芳"]
    assert [d.phone for d in DEMO_RESIDENTS] == ["13800138000", "13900139000", "13700137000"]
    assert DEMO_RESIDENTS[0].id_number.startswith("110101")
    for d in DEMO_RESIDENTS:
        assert validate_resident_id(d.id_number) == d.id_number
        assert validate_phone(d.phone) == d.phone
    beijing = timezone(timedelta(hours=8))
    for record in demo_records(NOW):
        assert (record.code_status, record.popup) == ("green", None)
        assert (record.last_test_result, record.vaccination) == ("negative", "booster")
        sampled = record.last_test_sampled_at.astimezone(beijing)
        assert sampled.date() == NOW.astimezone(beijing).date() - timedelta(days=1)


def test_health_record_round_trips_through_dict():
    record = HealthRecord(
        id_number="110101199003071233",
        code_status="yellow",
        popup="弹窗二",
        last_test_sampled_at=datetime(2022, 5, 31, 2, 30, tzinfo=timezone.utc),
        last_test_result="pending",
        vaccination="primary",
        updated_at=NOW,
    )
    data = record.to_dict()
    assert data["last_test_sampled_at"] == "2022-05-31T02:30:00+00:00"
    assert HealthRecord.from_dict(data) == record
    assert record.code_status_label == CODE_STATUS_LABELS["yellow"] == "居家观察"
    assert record.vaccination_label == VACCINATION_LABELS["primary"] == "完成基础免疫"
    assert VACCINATION_LABELS["none_found"] == "未查询到接种信息"

    with pytest.raises(ValueError):
        HealthRecord.from_dict({**data, "last_test_sampled_at": "2022-05-31T02:30:00"})
    with pytest.raises(ValueError):
        HealthRecord.from_dict({**data, "code_status": "purple"})
    with pytest.raises(ValueError):
        HealthRecord.from_dict({k: v for k, v in data.items() if k != "vaccination"})

    change = Change(seq=3, id_number="110101199003071233", changed_at=NOW)
    assert Change.from_dict(change.to_dict()) == change


# -- seeding into PostgreSQL ---------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_engine():
    url = create_database()
    engine = make_store_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_seed_writes_residents_in_batches_and_is_idempotent(seed_engine):
    assert seed_if_empty(seed_engine, 3_000, rng_seed=99, batch_size=1_000) == 3_000
    assert _count(seed_engine, "SELECT count(*) FROM healthkit_sim.residents") == 3_003
    # Not empty any more: nothing happens.
    assert seed_if_empty(seed_engine, 3_000, rng_seed=99) == 0
    # The same people again: all skipped; more of them: only the new ones added.
    assert seed(seed_engine, 3_000, rng_seed=99, batch_size=700) == 0
    assert seed(seed_engine, 4_000, rng_seed=99) == 1_000
    assert _count(seed_engine, "SELECT count(*) FROM healthkit_sim.residents") == 4_003
    assert _count(
        seed_engine, "SELECT count(*) - count(DISTINCT phone) FROM healthkit_sim.residents"
    ) == 0

    with seed_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT name, phone, code_status, last_test_result, vaccination "
                "FROM healthkit_sim.residents WHERE id_number = :id"
            ),
            {"id": DEMO_RESIDENTS[0].id_number},
        ).all()
    assert rows == [("张伟", "13800138000", "green", "negative", "booster")]
    # Demo people are (re)set with a change each time; synthetic ones are the initial state.
    assert _count(seed_engine, "SELECT count(DISTINCT id_number) FROM healthkit_sim.changes") == 3
