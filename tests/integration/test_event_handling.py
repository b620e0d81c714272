"""Idempotent, retried event handling and the dead-letter queue, on the real bus.

A small "verify" service (the name picks the ``verify.handled_events`` table and the
contract's queue ``evt-org-ledger_registered--verify.on_ledger_registered``) runs under
``nameko run`` in a child process. Its handler's behaviour is chosen by the ledger id
(``ok-``, ``flaky-``: fails twice then succeeds, ``broken-``: fails until an operator
"fixes" it with a row in ``probe_repairs``). It writes its effect through ``self.db``,
so a failed attempt's effect must be rolled back, and notes every attempt (and every
finished delivery) on connections of their own, so the notes survive that rollback.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from nameko.extensions import DependencyProvider
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

import services.org.models  # registers the org outbox (the publisher here)
import services.verify.models  # registers verify.handled_events, which handles() uses
from shared import deadletter
from shared.config import settings
from shared.db import Database, make_engine
from shared.events import contract
from shared.handling import DEAD_LETTER_QUEUE, handles
from shared.outbox import Relay, add_event
from tests.integration.support import ServiceProcess, fresh_bus, migrated_database, wait_for

LEDGER_REGISTERED = contract("org.ledger_registered")
QUEUE = LEDGER_REGISTERED.queue_name("verify", "on_ledger_registered")
HANDLER = "verify.on_ledger_registered"
RETRIES = 3
BACKOFF = 0.1

probe = MetaData()
effects = Table("probe_effects", probe, Column("event_id", String(36)), Column("ledger_id", String(80)))
attempts = Table(
    "probe_attempts",
    probe,
    Column("event_id", String(36)),
    Column("effects_seen", Integer),  # the event's effect rows visible when the attempt began
    Column("at", DateTime(timezone=True), server_default=func.clock_timestamp()),
)
deliveries = Table(
    "probe_deliveries",
    probe,
    Column("event_id", String(36)),
    Column("at", DateTime(timezone=True), server_default=func.clock_timestamp()),
)
repairs = Table("probe_repairs", probe, Column("ledger_id", String(80)))


class DeliveryProbe(DependencyProvider):
    """Notes each delivery once its worker finished, whatever the handler did."""

    def setup(self) -> None:
        self.engine = make_engine(self.container.config["DATABASE_URL"], pool_size=1)

    def stop(self) -> None:
        self.engine.dispose()

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        payload = worker_ctx.args[0] if worker_ctx.args else None
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        with self.engine.begin() as conn:
            conn.execute(insert(deliveries).values(event_id=event_id))


class VerifyProbeService:
    name = "verify"

    db = Database(pool_size=4)  # a worker holds two connections (its session, its notes)
    probe = DeliveryProbe()

    @handles("org.ledger_registered")
    def on_ledger_registered(self, data: dict, envelope: dict) -> None:
        event_id, ledger_id = envelope["event_id"], data["ledger_id"]
        seen = self.db.execute(
            select(func.count()).select_from(effects).where(effects.c.event_id == event_id)
        ).scalar_one()
        self.db.execute(insert(effects).values(event_id=event_id, ledger_id=ledger_id))
        with self.db.get_bind().begin() as conn:  # its own transaction: kept on rollback
            conn.execute(insert(attempts).values(event_id=event_id, effects_seen=seen))
            tried = conn.execute(
                select(func.count()).select_from(attempts).where(attempts.c.event_id == event_id)
            ).scalar_one()
            repaired = conn.execute(select(repairs).where(repairs.c.ledger_id == ledger_id)).first()
        if ledger_id.startswith("flaky-") and tried <= 2:
            raise RuntimeError("flaky")
        if ledger_id.startswith("broken-") and repaired is None:
            raise RuntimeError("broken")


# where the test service's broken handler raises, as a dead letter's x-error names it
BROKEN_AT = "RuntimeError at tests/integration/test_event_handling.py:"


@pytest.fixture(scope="module")
def bus():
    with fresh_bus() as bus:
        yield bus


@pytest.fixture(scope="module")
def db_url():
    with migrated_database() as url:
        yield url


@pytest.fixture(scope="module")
def engine(db_url):
    # Small pools: the PostgreSQL server is shared with other test runs.
    engine = make_engine(db_url, pool_size=3)
    probe.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def org_relay(engine, bus):
    relay = Relay("org", engine, bus.uri, {})
    relay.declare()
    return relay


@pytest.fixture(scope="module")
def operator_env(bus):
    """shared.deadletter reads AMQP_URI from the (cached) settings, as the CLI does."""
    before = os.environ.get("AMQP_URI")
    os.environ["AMQP_URI"] = bus.uri
    settings.cache_clear()
    yield
    if before is None:
        os.environ.pop("AMQP_URI", None)
    else:
        os.environ["AMQP_URI"] = before
    settings.cache_clear()


@pytest.fixture(scope="module")
def service(db_url, bus, org_relay, tmp_path_factory):
    env = {
        "AMQP_URI": bus.uri,
        "DATABASE_URL": db_url,
        "HANDLER_RETRIES": str(RETRIES),
        "HANDLER_BACKOFF_SECONDS": str(BACKOFF),
    }
    process = ServiceProcess(
        "tests.integration.test_event_handling:VerifyProbeService",
        {"AMQP_URI": bus.uri, "DATABASE_URL": db_url, "max_workers": 4},
        env,
        tmp_path_factory.mktemp("verify-probe"),
    ).start()
    try:
        wait_for(
            lambda: process.check_alive() and (bus.queue_counts(QUEUE) or (0, 0))[1] >= 1,
            timeout=20,
            what="the handler to consume its queue",
        )
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def empty_dead_letters(bus, service):
    if bus.queue_counts(DEAD_LETTER_QUEUE) is not None:
        bus.purge(DEAD_LETTER_QUEUE)
    yield
    service.check_alive()


def registration(ledger_id: str) -> dict:
    return {"ledger_id": ledger_id, "challenge_id": str(uuid.uuid4()), "applicant": "sealed-for-verify"}


def publish_through_outbox(engine, relay, ledger_id: str) -> str:
    with Session(engine) as session, session.begin():
        event_id = add_event(session, "org.ledger_registered", registration(ledger_id), ledger_id)
    assert relay.relay_all() == 1
    return event_id


def envelope(ledger_id: str) -> dict:
    """An envelope as the org relay would publish it."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "org.ledger_registered",
        "occurred_at": "2024-05-01T08:00:00+00:00",
        "aggregate_id": ledger_id,
        "data": {**registration(ledger_id), "client": ""},
    }


def count(engine, table: Table, event_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(table.c.event_id == event_id)).scalar_one()


def attempt_rows(engine, event_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(select(attempts).where(attempts.c.event_id == event_id).order_by(attempts.c.at)).all()


def handled_rows(engine, event_id: str) -> list:
    table = services.verify.models.handled_events
    with engine.connect() as conn:
        return conn.execute(select(table.c.handler).where(table.c.event_id == event_id)).scalars().all()


def wait_delivered(engine, event_id: str, times: int = 1) -> None:
    wait_for(lambda: count(engine, deliveries, event_id) >= times, timeout=15, what=f"{times} deliveries of {event_id}")


def assert_backoff(rows: list) -> None:
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(rows, rows[1:])]
    for n, gap in enumerate(gaps):
        expected = BACKOFF * 4**n
        assert expected * 0.9 <= gap < expected + 2.0, gaps


def all_rows(engine, table: Table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def dead_letter_count(bus) -> int:
    return (bus.queue_counts(DEAD_LETTER_QUEUE) or (0, 0))[0]


def test_an_event_delivered_again_after_it_was_handled_has_its_effect_once(engine, bus, org_relay):
    ledger_id = f"ok-{uuid.uuid4()}"
    with Session(engine) as session, session.begin():
        event_id = add_event(session, "org.ledger_registered", registration(ledger_id), ledger_id)
    outbox = services.org.models.outbox
    with engine.connect() as conn:
        payload = conn.execute(select(outbox.c.payload).where(outbox.c.event_id == event_id)).scalar_one()
    assert org_relay.relay_all() == 1
    wait_delivered(engine, event_id)
    assert count(engine, effects, event_id) == 1

    # The relay crashed between publishing and deleting the row: it publishes again.
    bus.publish("org.events", "ledger_registered", payload)
    wait_delivered(engine, event_id, times=2)

    assert count(engine, effects, event_id) == 1
    assert len(attempt_rows(engine, event_id)) == 1  # skipped before the handler ran
    assert handled_rows(engine, event_id) == [HANDLER]
    assert dead_letter_count(bus) == 0


def test_copies_delivered_at_once_have_their_effect_once(engine, bus):
    message = envelope(f"ok-{uuid.uuid4()}")
    bus.publish("org.events", "ledger_registered", message, copies=3)
    wait_delivered(engine, message["event_id"], times=3)

    assert count(engine, effects, message["event_id"]) == 1
    assert len(attempt_rows(engine, message["event_id"])) == 1
    assert handled_rows(engine, message["event_id"]) == [HANDLER]
    assert dead_letter_count(bus) == 0


def test_a_failing_handler_is_retried_with_backoff_until_it_succeeds(engine, bus, org_relay):
    event_id = publish_through_outbox(engine, org_relay, f"flaky-{uuid.uuid4()}")
    wait_delivered(engine, event_id)

    rows = attempt_rows(engine, event_id)
    assert len(rows) == 3
    assert [r.effects_seen for r in rows] == [0, 0, 0]  # each failed attempt was rolled back
    assert_backoff(rows)
    assert count(engine, effects, event_id) == 1
    assert handled_rows(engine, event_id) == [HANDLER]
    assert count(engine, deliveries, event_id) == 1  # retried in place, not redelivered
    assert dead_letter_count(bus) == 0


def test_a_handler_that_keeps_failing_dead_letters_the_event_after_its_retries(engine, bus, org_relay):
    ledger_id = f"broken-{uuid.uuid4()}"
    event_id = publish_through_outbox(engine, org_relay, ledger_id)
    wait_delivered(engine, event_id)

    rows = attempt_rows(engine, event_id)
    assert len(rows) == RETRIES
    assert [r.effects_seen for r in rows] == [0] * RETRIES
    assert_backoff(rows)
    assert count(engine, effects, event_id) == 0
    assert handled_rows(engine, event_id) == []  # so a replay is not skipped as a duplicate

    [parked] = bus.drain(DEAD_LETTER_QUEUE)
    assert parked.body["event_id"] == event_id
    assert parked.body["aggregate_id"] == ledger_id
    assert parked.body["data"]["ledger_id"] == ledger_id
    error = parked.headers.pop("x-error")
    assert parked.headers == {"x-original-queue": QUEUE, "x-attempts": RETRIES}
    # the type and where it was raised, for the operator; not its message, which might quote a value
    assert error.startswith(BROKEN_AT) and "broken" not in error
    assert parked.properties.delivery_mode == 2
    assert bus.queue_counts(QUEUE)[0] == 0  # acked: not also left on the handler's queue


@pytest.mark.parametrize(
    "shape, error",
    [
        ("a required field missing", "contract: ValidationError"),
        ("a field of the wrong type", "contract: ValidationError"),
        ("no data at all", "contract: KeyError"),
        ("no event id", "contract: KeyError"),
    ],
)
def test_an_event_that_does_not_fit_its_contract_is_dead_lettered_at_once(engine, bus, shape, error):
    message = envelope(f"ok-{uuid.uuid4()}")
    if shape == "a required field missing":
        del message["data"]["applicant"]
    elif shape == "a field of the wrong type":
        message["data"]["challenge_id"] = {"not": "a string"}
    elif shape == "no data at all":
        del message["data"]
    else:
        del message["event_id"]
    tried_before = all_rows(engine, attempts)

    bus.publish("org.events", "ledger_registered", message)
    wait_for(lambda: dead_letter_count(bus) >= 1, timeout=10, what="the dead letter")

    [parked] = bus.drain(DEAD_LETTER_QUEUE)
    assert parked.body == message
    assert parked.headers == {"x-original-queue": QUEUE, "x-error": error, "x-attempts": 0}
    assert all_rows(engine, attempts) == tried_before  # the handler never ran
    if "event_id" in message:
        assert count(engine, effects, message["event_id"]) == 0
        assert handled_rows(engine, message["event_id"]) == []


def test_an_operator_lists_and_replays_a_dead_letter_and_the_fixed_handler_handles_it(
    engine, bus, org_relay, operator_env, capsys
):
    ledger_id = f"broken-{uuid.uuid4()}"
    event_id = publish_through_outbox(engine, org_relay, ledger_id)
    wait_delivered(engine, event_id)
    wait_for(lambda: dead_letter_count(bus) == 1, timeout=5, what="the dead letter")

    expected = {
        "event_id": event_id,
        "event_type": "org.ledger_registered",
        "queue": QUEUE,
        "attempts": RETRIES,
    }
    [listed] = deadletter.list_messages()
    assert listed.pop("error").startswith(BROKEN_AT)
    assert listed == expected
    assert deadletter.main(["list"]) == 0
    [printed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed.pop("error").startswith(BROKEN_AT) and printed == expected
    assert dead_letter_count(bus) == 1  # listing leaves it parked

    with engine.begin() as conn:  # the operator deploys the fix
        conn.execute(insert(repairs).values(ledger_id=ledger_id))
    assert deadletter.replay() == 1
    assert dead_letter_count(bus) == 0

    wait_for(lambda: count(engine, effects, event_id) == 1, timeout=10, what="the replayed event's effect")
    wait_delivered(engine, event_id, times=2)
    assert handled_rows(engine, event_id) == [HANDLER]
    assert len(attempt_rows(engine, event_id)) == RETRIES + 1
    assert dead_letter_count(bus) == 0


def test_listing_survives_a_dead_letter_that_is_not_an_envelope(engine, bus, operator_env):
    bus.publish("org.events", "ledger_registered", ["not", "an", "envelope"])
    wait_for(lambda: dead_letter_count(bus) >= 1, timeout=10, what="the dead letter")
    listed = deadletter.list_messages()
    assert listed == [
        {"event_id": None, "event_type": None, "queue": QUEUE, "error": "contract: TypeError", "attempts": 0}
    ]


def test_a_replay_puts_each_parked_message_back_once(engine, bus, operator_env):
    # Messages that do not fit the contract come straight back to the dead-letter queue.
    parked = 10
    for _ in range(parked):
        message = envelope(f"ok-{uuid.uuid4()}")
        del message["data"]["applicant"]
        bus.publish("org.events", "ledger_registered", message)
    wait_for(lambda: dead_letter_count(bus) == parked, timeout=10, what="the dead letters")

    assert deadletter.replay() == parked


def test_handled_event_ids_are_forgotten_after_their_days(engine):
    from sqlalchemy import text

    from shared.handling import forget_handled_events

    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    with Session(engine) as session:
        session.execute(text(
            "INSERT INTO verify.handled_events (event_id, handler, handled_at) VALUES "
            "(:old, 'verify.probe', now() - interval '31 days'), (:recent, 'verify.probe', now() - interval '29 days')"
        ), {"old": old, "recent": recent})
        session.commit()
        assert forget_handled_events(session, "verify", keep_days=30) >= 1
        session.commit()
        kept = set(session.scalars(text(
            "SELECT event_id FROM verify.handled_events WHERE event_id IN (:old, :recent)"
        ), {"old": old, "recent": recent}))
    assert kept == {recent}
