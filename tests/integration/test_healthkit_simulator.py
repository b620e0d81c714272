"""The Health Kit simulator, driven over real HTTP through the production client.

The simulator runs on a free port in a background thread against the session's
PostgreSQL database; every test uses residents of its own (random valid IDs), so
other tests sharing the database cannot disturb these.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import requests
import sqlalchemy as sa

from shared.config import load_settings
from shared.healthkit import (
    HealthKit,
    HealthKitUnavailable,
    HealthRecord,
    IdentityMatch,
    health_kit,
)
from shared.healthkit.client import HttpHealthKit, SimulatorAdmin
from shared.healthkit.simulator import HealthKitSimulator, create_server, make_store_engine
from shared.validation import resident_id_check_digit

_rng = random.SystemRandom()


def new_id() -> str:
    first17 = (
        _rng.choice(["110105", "110108", "310104", "440305"])
        + f"{_rng.randrange(1950, 2010)}{_rng.randrange(1, 13):02d}{_rng.randrange(1, 29):02d}"
        + f"{_rng.randrange(1, 1000):03d}"
    )
    return first17 + resident_id_check_digit(first17)


def new_phone() -> str:
    return "199" + f"{_rng.randrange(100_000_000):08d}"


@pytest.fixture(scope="module")
def sim(database_url):
    engine = make_store_engine(database_url)
    reads = make_store_engine(database_url, autocommit=True)  # as serve() runs it
    app = HealthKitSimulator(engine, reads=reads)
    server = create_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    admin = SimulatorAdmin(url, timeout=5, retries=0)
    yield SimpleNamespace(app=app, url=url, admin=admin, engine=engine)
    admin.close()
    server.shutdown()
    server.server_close()
    thread.join(5)
    engine.dispose()
    reads.dispose()


@pytest.fixture(autouse=True)
def reset_switches(sim):
    yield
    sim.app.set_switches({"latency_ms": 0, "failure_rate": 0.0})


@pytest.fixture
def kit(sim):
    client = HttpHealthKit(sim.url, timeout=5, retries=2, backoff=0.05)
    yield client
    client.close()


def add_person(sim, **fields):
    id_number = new_id()
    values = {"name": "赵敏", "phone": new_phone(), **fields}
    stored = sim.admin.put_resident(id_number, **values)
    return id_number, stored


def head_cursor(kit) -> int:
    cursor = 0
    while True:
        page, cursor = kit.changes(cursor)
        if not page:
            return cursor


def test_the_http_client_implements_the_interface(kit, sim):
    assert isinstance(kit, HealthKit)
    configured = health_kit(load_settings({"HEALTHKIT_URL": sim.url + "/"}))
    assert isinstance(configured, HttpHealthKit)
    assert configured.base_url == sim.url
    id_number, _ = add_person(sim)
    assert id_number in configured.bulk_status([id_number])


def test_match_identity_answers_all_four_ways(kit, sim):
    phone = new_phone()
    id_number, stored = add_person(sim, name="欧阳娜娜", phone=phone)
    assert stored["name"] == "欧阳娜娜" and stored["phone"] == phone

    assert kit.match_identity("欧阳娜娜", "resident_id", id_number, phone) is IdentityMatch.MATCH
    # The phone may be written the way people write it.
    assert kit.match_identity("欧阳娜娜", "resident_id", id_number, "+86 " + phone) == "match"
    assert (
        kit.match_identity("欧阳娜娜", "resident_id", id_number, new_phone())
        is IdentityMatch.PHONE_MISMATCH
    )
    assert (
        kit.match_identity("欧阳娜", "resident_id", id_number, phone)
        is IdentityMatch.NAME_MISMATCH
    )
    assert kit.match_identity("欧阳娜娜", "resident_id", new_id(), phone) is IdentityMatch.NOT_FOUND
    assert kit.match_identity("欧阳娜娜", "passport", id_number, phone) is IdentityMatch.NOT_FOUND


def test_bulk_status_returns_known_people_and_omits_unknown_ones(kit, sim):
    sampled = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    yellow, _ = add_person(
        sim,
        code_status="yellow",
        popup="弹窗二",
        last_test_sampled_at=sampled,
        last_test_result="pending",
        vaccination="primary",
    )
    green, _ = add_person(sim, last_test_sampled_at=sampled, last_test_result="negative",
                          vaccination="booster")
    untested, _ = add_person(sim)
    unknown = new_id()

    records = kit.bulk_status([yellow, green, untested, unknown, yellow])
    assert set(records) == {yellow, green, untested}
    record = records[yellow]
    assert isinstance(record, HealthRecord)
    assert (record.code_status, record.popup) == ("yellow", "弹窗二")
    assert record.last_test_sampled_at == sampled
    assert record.last_test_result == "pending"
    assert record.vaccination == "primary"
    assert record.updated_at is not None and record.updated_at.tzinfo is not None
    assert records[green].code_status == "green" and records[green].popup is None
    # A new resident given nothing else: green, no test, nothing known about vaccination.
    assert records[untested].last_test_sampled_at is None
    assert records[untested].last_test_result is None
    assert records[untested].vaccination == "none_found"

    assert kit.bulk_status([]) == {}
    assert kit.bulk_status([unknown]) == {}


def test_bulk_status_is_one_sql_statement_for_a_thousand_ids(kit, sim):
    known = [add_person(sim)[0] for _ in range(3)]
    ids = known + [new_id() for _ in range(997)]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(sim.app.reads, "before_cursor_execute", count)
    try:
        records = kit.bulk_status(ids)
    finally:
        sa.event.remove(sim.app.reads, "before_cursor_execute", count)
    assert set(records) == set(known)
    assert len([s for s in statements if "residents" in s]) == 1
    assert "ANY" in statements[-1].upper()


def test_more_than_a_thousand_ids_are_refused(kit, sim):
    ids = [new_id() for _ in range(1001)]
    with pytest.raises(ValueError, match="1000"):
        kit.bulk_status(ids)
    # The simulator refuses them too, clearly, whoever the caller is.
    response = requests.post(sim.url + "/status/bulk", json={"id_numbers": ids}, timeout=5)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "too_many_ids"
    assert body["field"] == "id_numbers"
    assert "1000" in body["message"]


def test_put_changes_health_and_the_change_feed_lists_it(kit, sim):
    id_number, _ = add_person(sim)
    cursor = head_cursor(kit)
    assert kit.bulk_status([id_number])[id_number].code_status == "green"

    sampled = datetime(2022, 5, 30, 1, 15, tzinfo=timezone.utc)
    stored = sim.admin.put_resident(
        id_number, code_status="red", last_test_sampled_at=sampled, last_test_result="positive"
    )
    assert stored["code_status"] == "red"
    assert stored["name"] == "赵敏"  # fields not sent keep their value

    record = kit.bulk_status([id_number])[id_number]
    assert record.code_status == "red"
    assert record.last_test_result == "positive"
    assert record.last_test_sampled_at == sampled

    changes, next_cursor = kit.changes(cursor)
    assert [c.id_number for c in changes] == [id_number]
    assert next_cursor == changes[-1].seq > cursor
    assert changes[0].changed_at.tzinfo is not None
    assert kit.changes(next_cursor) == ([], next_cursor)

    # Paging: limit bounds the page, next continues where it stopped.
    second, _ = add_person(sim)
    page, after_first = kit.changes(cursor, limit=1)
    assert len(page) == 1 and after_first == page[0].seq
    rest, _ = kit.changes(after_first)
    assert second in [c.id_number for c in rest]

    assert sim.admin.get_resident(id_number)["code_status"] == "red"
    assert sim.admin.get_resident(new_id()) is None


def test_put_validates_and_names_the_bad_field(sim):
    id_number = new_id()
    cases = [
        ({"name": "李雷", "phone": "12345"}, "phone"),
        ({"name": "李雷"}, "phone"),
        ({"name": "李雷", "phone": new_phone(), "code_status": "purple"}, "code_status"),
        ({"name": "李雷", "phone": new_phone(), "vaccination": "lots"}, "vaccination"),
        (
            {"name": "李雷", "phone": new_phone(), "last_test_sampled_at": "2022-05-01T10:00"},
            "last_test_sampled_at",
        ),
        (
            {"name": "李雷", "phone": new_phone(), "last_test_result": "negative"},
            "last_test_sampled_at",
        ),
        ({"name": "李雷", "phone": new_phone(), "colour": "green"}, "colour"),
    ]
    for body, field in cases:
        response = requests.put(f"{sim.url}/residents/{id_number}", json=body, timeout=5)
        assert response.status_code == 400, field
        assert response.json()["field"] == field
    bad_id = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    response = requests.put(
        f"{sim.url}/residents/{bad_id}", json={"name": "李雷", "phone": new_phone()}, timeout=5
    )
    assert (response.status_code, response.json()["field"]) == (400, "id_number")
    # Error bodies do not repeat what was sent; the client's ValueError neither.
    assert bad_id not in response.text
    with pytest.raises(ValueError, match="field phone") as excinfo:
        sim.admin.put_resident(id_number, name="李雷", phone="12345")
    assert id_number not in str(excinfo.value)
    assert sim.admin.get_resident(id_number) is None


def test_failure_switch_makes_the_client_give_up_after_retries(kit, sim, caplog):
    id_number, stored = add_person(sim)
    state = sim.admin.set_switches(failure_rate=1.0)
    assert state["failure_rate"] == 1.0
    before = sim.app.injected_failures
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(HealthKitUnavailable) as excinfo:
        kit.bulk_status([id_number])
    elapsed = time.monotonic() - started
    assert sim.app.injected_failures - before == 3  # first try + 2 retries
    assert elapsed >= 0.05 + 0.1  # backoff between tries
    message = str(excinfo.value)
    assert "POST /status/bulk" in message and "503" in message
    with pytest.raises(HealthKitUnavailable):
        kit.match_identity("赵敏", "resident_id", id_number, stored["phone"])
    logged = caplog.text + message
    assert id_number not in logged and stored["phone"] not in logged

    # Admin endpoints still work while the "Health Kit" is down; data calls recover.
    assert sim.admin.get_resident(id_number)["id_number"] == id_number
    sim.admin.set_switches(failure_rate=0.0)
    assert id_number in kit.bulk_status([id_number])


def test_latency_switch_with_a_short_timeout_is_unavailable(sim):
    id_number, _ = add_person(sim)
    sim.admin.set_switches(latency_ms=600)
    assert sim.admin.switches()["latency_ms"] == 600
    impatient = HttpHealthKit(sim.url, timeout=0.2, retries=1, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(HealthKitUnavailable, match="timeout"):
        impatient.bulk_status([id_number])
    assert time.monotonic() - started < 2
    patient = HttpHealthKit(sim.url, timeout=3, retries=0)
    started = time.monotonic()
    assert id_number in patient.bulk_status([id_number])
    assert time.monotonic() - started >= 0.6
    impatient.close()
    patient.close()


def test_nothing_listening_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kit = HttpHealthKit(f"http://127.0.0.1:{port}", timeout=0.5, retries=1, backoff=0.01)
    with pytest.raises(HealthKitUnavailable, match="connection error"):
        kit.match_identity("赵敏", "resident_id", new_id(), new_phone())


def test_switches_are_validated(sim):
    response = requests.put(sim.url + "/switches", json={"failure_rate": 2}, timeout=5)
    assert (response.status_code, response.json()["field"]) == (400, "failure_rate")
    response = requests.put(sim.url + "/switches", json={"latency_ms": -1}, timeout=5)
    assert (response.status_code, response.json()["field"]) == (400, "latency_ms")


def test_health_endpoint_counts_residents(sim):
    add_person(sim)
    body = sim.admin.health()
    assert body["ok"] is True and body["residents"] >= 1


def test_a_hundred_concurrent_clients(kit, sim):
    people = [add_person(sim) for _ in range(5)]
    ids = [p[0] for p in people]
    sim.admin.set_switches(latency_ms=50)

    def call(i: int):
        id_number, stored = people[i % len(people)]
        if i % 2:
            return kit.match_identity("赵敏", "resident_id", id_number, stored["phone"])
        return kit.bulk_status(ids)

    started = time.monotonic()
    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(call, range(200)))
    assert all(r == IdentityMatch.MATCH for r in results[1::2])
    assert all(set(r) == set(ids) for r in results[0::2])
    # 200 calls of >= 50 ms each, served concurrently: far below 10 s serially.
    assert time.monotonic() - started < 5
