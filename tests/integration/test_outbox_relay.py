"""The transactional outbox and its relay, on the real PostgreSQL and RabbitMQ.

What must hold (DESIGN.md, "Reliability rules"): an event is published if and only if
the transaction that wrote it committed; subscriber queues exist before anything is
published, so an event nobody consumes yet is kept; several relays at once lose
nothing, publish nothing twice and keep each aggregate's order; the relay inside a
running service is woken at once, not only by its poll: by NOTIFY for a commit made
elsewhere, directly for one made by its own service's workers.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

import psycopg2
import pytest
from kombu import Connection
from marshmallow import ValidationError
from nameko.amqp.publish import UndeliverableMessage
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

import services.org.models  # noqa: F401 - registers the org outbox
import services.verify.models  # noqa: F401 - registers the verify outbox
from shared.db import Database, make_engine
from shared.events import contract
from shared.outbox import _LOCAL_RELAYS, OutboxRelay, Relay, add_event, add_events, notify_channel
from shared.rpc import rpc
from tests.integration.support import ServiceProcess, fresh_bus, migrated_database, wait_for

LEDGER_REGISTERED = contract("org.ledger_registered")
ORG_QUEUE = LEDGER_REGISTERED.queue_name("verify", "on_ledger_registered")
IDENTITY_VERIFIED = contract("verify.identity_verified")
VERIFY_QUEUE = IDENTITY_VERIFIED.queue_name("org", "on_identity_verified")


class OrgRelayService:
    """The org service reduced to its relay, declared exactly as the real one does, and
    one RPC that commits an event as the real one's workers do."""

    name = "org"
    relay = OutboxRelay()
    db = Database(pool_size=2)

    @rpc
    def register_ledger(self, ledger_id: str) -> str:
        return add_event(self.db, "org.ledger_registered", registration(ledger_id), ledger_id)


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
    engine = make_engine(db_url, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture
def org_relay(engine, bus):
    relay = Relay("org", engine, bus.uri, {})
    relay.declare()
    bus.purge(ORG_QUEUE)
    yield relay
    assert outbox_rows(engine, "org") == 0


def outbox_rows(engine, schema: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {schema}.outbox")).scalar_one()


def test_events_written_without_waking_the_relay_go_with_its_next_round(engine, bus, org_relay_service):
    # e.g. a run's ledger_synced news, thousands of them: nothing waits, the relay's
    # idle poll takes them within a second
    ledger_ids = [str(uuid.uuid4()) for _ in range(3)]
    with Session(engine) as session, session.begin():
        add_events(session, "org.ledger_registered", [(registration(lid), lid) for lid in ledger_ids], wake=False)
    got = [bus.next_message(ORG_QUEUE, timeout=5) for _ in ledger_ids]
    assert all(g is not None for g in got), org_relay_service.log()
    assert sorted(g[0].body["aggregate_id"] for g in got) == sorted(ledger_ids)
    wait_for(lambda: outbox_rows(engine, "org") == 0, timeout=2, what="the relayed rows to be deleted")


def registration(ledger_id: str, sequence: int = 0) -> dict:
    return {
        "ledger_id": ledger_id,
        "challenge_id": f"{ledger_id}:{sequence:05d}",
        "applicant": "sealed-for-verify",
        "client": "203.0.113.7",
    }


def register(engine, ledger_id: str | None = None) -> tuple[str, str]:
    """Commit one org.ledger_registered event; returns (ledger_id, event_id)."""
    ledger_id = ledger_id or str(uuid.uuid4())
    with Session(engine) as session, session.begin():
        event_id = add_event(session, "org.ledger_registered", registration(ledger_id), ledger_id)
    return ledger_id, event_id


def test_an_event_is_published_once_if_and_only_if_its_transaction_commits(engine, org_relay, bus):
    rolled_back = str(uuid.uuid4())
    with Session(engine) as session:
        add_event(session, "org.ledger_registered", registration(rolled_back), rolled_back)
        session.rollback()
    committed, event_id = register(engine)

    assert org_relay.relay_all() == 1
    assert org_relay.relay_all() == 0

    messages = bus.drain(ORG_QUEUE)
    assert [m.body["event_id"] for m in messages] == [event_id]
    message = messages[0]
    assert message.body["event_type"] == "org.ledger_registered"
    assert message.body["aggregate_id"] == committed
    assert message.body["data"] == registration(committed)
    assert message.body["occurred_at"]
    assert message.properties.message_id == event_id
    assert message.properties.delivery_mode == 2  # persistent: survives a broker restart
    assert message.properties.content_type == "application/json"


def test_a_relay_claims_nothing_while_another_holds_the_services_relay_lock(engine, org_relay, bus):
    _, event_id = register(engine)
    with engine.connect() as other:  # another instance's relay, mid-batch
        other.execute(text("SELECT pg_advisory_xact_lock(hashtext('outbox:org'))"))
        assert org_relay.relay_batch() == 0
        assert outbox_rows(engine, "org") == 1
        other.rollback()
    assert org_relay.relay_batch() == 1
    assert [m.body["event_id"] for m in bus.drain(ORG_QUEUE)] == [event_id]


def test_an_event_that_breaks_its_contract_is_never_written(engine, org_relay):
    with Session(engine) as session, session.begin():
        with pytest.raises(ValidationError):
            add_event(session, "org.ledger_registered", {"ledger_id": "l-1"}, "l-1")
    assert outbox_rows(engine, "org") == 0


def test_subscriber_queues_are_declared_before_publishing_so_an_unconsumed_event_is_kept(engine, bus):
    relay = Relay("verify", engine, bus.uri, {})
    with Connection(bus.uri) as conn:
        get_event_exchange("verify", {})(conn).declare()
    assert bus.queue_counts(VERIFY_QUEUE) is None
    data = {"challenge_id": "c-1", "purpose": "ledger_registration", "subject_id": "l-1", "person_ref": "p-1"}
    with Session(engine) as session, session.begin():
        event_id = add_event(session, "verify.identity_verified", data, "c-1")

    # With no queue bound, the mandatory publish comes back: the batch fails and the
    # row stays in the outbox instead of the event being dropped.
    with pytest.raises(UndeliverableMessage):
        relay.relay_batch()
    assert outbox_rows(engine, "verify") == 1

    relay.declare()
    assert bus.queue_counts(VERIFY_QUEUE) == (0, 0)
    with bus.channel() as ch, pytest.raises(Exception, match="PRECONDITION_FAILED"):
        ch.queue_declare(VERIFY_QUEUE, durable=False)  # it exists, and it is durable

    assert relay.relay_all() == 1
    assert outbox_rows(engine, "verify") == 0
    # Nobody consumes: the broker keeps it for the subscriber.
    time.sleep(0.1)
    assert bus.queue_counts(VERIFY_QUEUE) == (1, 0)
    [message] = bus.drain(VERIFY_QUEUE)
    assert message.body["event_id"] == event_id


def test_a_routed_event_reaches_only_the_subscribers_that_take_its_purpose(engine, bus):
    # verify.identity_verified is routed by purpose: org takes registrations, invites
    # and re-confirmations, member takes joins, nobody takes logins. A queue bound as a
    # broadcast handler is (no purpose given) hears all of them.
    relay = Relay("verify", engine, bus.uri, {})
    relay.declare()
    member_queue = IDENTITY_VERIFIED.queue_name("member", "on_identity_verified")
    with bus.channel() as ch:
        ch.queue_declare("test-every-purpose", auto_delete=True)
        for key in IDENTITY_VERIFIED.binding_keys():
            ch.queue_bind("test-every-purpose", "verify.events", routing_key=key)
    for queue in (VERIFY_QUEUE, member_queue, "test-every-purpose"):
        bus.purge(queue)
    sent = {}
    with Session(engine) as session, session.begin():
        for purpose in ("join", "ledger_registration", "login", "reconfirm", "admin_invite"):
            data = {"challenge_id": str(uuid.uuid4()), "purpose": purpose, "subject_id": None, "person_ref": "p-1"}
            sent[add_event(session, "verify.identity_verified", data, data["challenge_id"])] = purpose

    # a login nobody subscribes to is published (not mandatory), not kept for ever
    assert relay.relay_all() == 5
    assert outbox_rows(engine, "verify") == 0

    def purposes(queue):  # each was routed by the time the broker confirmed it
        return sorted(sent[m.body["event_id"]] for m in wait_for(lambda: bus.drain(queue), what=queue))

    assert purposes(VERIFY_QUEUE) == ["admin_invite", "ledger_registration", "reconfirm"]
    assert purposes(member_queue) == ["join"]
    assert purposes("test-every-purpose") == sorted(sent.values())


def test_concurrent_relays_publish_every_event_once_in_aggregate_order(db_url, engine, org_relay, bus):
    writers, aggregates_per_writer, events_per_writer = 5, 4, 100
    relays = [Relay("org", make_engine(db_url, pool_size=1), bus.uri, {}, batch_size=25) for _ in range(3)]
    published = [0] * len(relays)
    written: dict[str, str] = {}  # event_id -> aggregate
    errors: list[BaseException] = []
    writing_done = threading.Event()

    def write(writer: int) -> None:
        rng = random.Random(writer)
        aggregates = [f"ledger-{writer}-{a}" for a in range(aggregates_per_writer)]
        sequence = dict.fromkeys(aggregates, 0)
        left = events_per_writer
        try:
            while left:
                batch = min(left, rng.randint(1, 3))
                with Session(engine) as session, session.begin():
                    for _ in range(batch):
                        aggregate = rng.choice(aggregates)
                        sequence[aggregate] += 1
                        event_id = add_event(
                            session, "org.ledger_registered", registration(aggregate, sequence[aggregate]), aggregate
                        )
                        written[event_id] = aggregate
                left -= batch
                time.sleep(rng.random() * 0.004)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def relay(index: int) -> None:
        try:
            while True:
                n = relays[index].relay_all()
                published[index] += n
                if writing_done.is_set() and n == 0 and outbox_rows(engine, "org") == 0:
                    return
                if n == 0:
                    time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    started = time.monotonic()
    relay_threads = [threading.Thread(target=relay, args=(i,)) for i in range(len(relays))]
    writer_threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in relay_threads + writer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join(30)
    writing_done.set()
    for thread in relay_threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    for r in relays:
        r.engine.dispose()
    assert not errors, errors
    assert not any(t.is_alive() for t in relay_threads + writer_threads)

    total = writers * events_per_writer
    assert len(written) == total
    messages = bus.drain(ORG_QUEUE)
    ids = [m.body["event_id"] for m in messages]
    duplicates = len(ids) - len(set(ids))
    print(
        f"\n{total} events, relays published {published} in {elapsed:.2f}s, "
        f"{len(messages)} messages consumed, {duplicates} duplicate(s)"
    )
    assert set(ids) == set(written), "an event was lost"
    assert duplicates == 0
    assert sum(published) == total

    last_seen: dict[str, int] = {}
    for message in messages:
        aggregate = message.body["aggregate_id"]
        assert aggregate == written[message.body["event_id"]]
        sequence = int(message.body["data"]["challenge_id"].rsplit(":", 1)[1])
        assert sequence == last_seen.get(aggregate, 0) + 1, f"{aggregate} out of order"
        last_seen[aggregate] = sequence
    assert outbox_rows(engine, "org") == 0


@pytest.fixture
def org_relay_service(db_url, bus, engine, org_relay, tmp_path):
    # An event committed while no relay runs is published when the service starts.
    _, waiting = register(engine)
    service = ServiceProcess(
        "tests.integration.test_outbox_relay:OrgRelayService",
        {"AMQP_URI": bus.uri, "DATABASE_URL": db_url},
        {"AMQP_URI": bus.uri, "DATABASE_URL": db_url},
        tmp_path,
    ).start()
    try:
        got = bus.next_message(ORG_QUEUE, timeout=15)
        service.check_alive()
        assert got is not None, service.log()
        assert got[0].body["event_id"] == waiting
        yield service
    finally:
        service.stop()


def test_the_relay_in_a_running_service_publishes_a_commit_at_once(engine, bus, org_relay_service):
    # Each event is committed right after the previous one arrived, i.e. right after
    # the relay ran: a relay that only polled every second would take ~1s for each.
    latencies = []
    for _ in range(5):
        _, event_id = register(engine)
        committed = time.monotonic()
        got = bus.next_message(ORG_QUEUE, timeout=3)
        assert got is not None, org_relay_service.log()
        message, arrived = got
        assert message.body["event_id"] == event_id
        latencies.append(arrived - committed)
    print(f"\nrelay latency after commit: {', '.join(f'{s * 1000:.0f}ms' for s in latencies)}")
    assert max(latencies) < 0.5
    # The row goes once the broker confirmed the message (just after we may have seen it).
    wait_for(lambda: outbox_rows(engine, "org") == 0, timeout=2, what="the relayed rows to be deleted")
    assert "outbox relay for org failed" not in org_relay_service.log()


def test_a_commit_by_the_services_own_worker_wakes_its_relay_directly(db_url, bus, org_relay_service):
    listener = psycopg2.connect(make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False))
    listener.autocommit = True
    listener.cursor().execute(f"LISTEN {notify_channel('org')}")
    latencies = []
    try:
        with ClusterRpcProxy({"AMQP_URI": bus.uri}) as cluster:
            for _ in range(5):
                asked = time.monotonic()
                event_id = cluster.org.register_ledger(str(uuid.uuid4()))
                got = bus.next_message(ORG_QUEUE, timeout=3)
                assert got is not None, org_relay_service.log()
                assert got[0].body["event_id"] == event_id
                latencies.append(got[1] - asked)
        listener.poll()
        assert listener.notifies == []  # no NOTIFY went out: the relay was woken in its process
    finally:
        listener.close()
    print(f"\nrelay latency after an RPC's commit: {', '.join(f'{s * 1000:.0f}ms' for s in latencies)}")
    assert max(latencies) < 0.5


def test_a_running_service_names_its_connections(engine, bus, org_relay_service):
    # so that an operator (python -m shared.status, pg_stat_activity) sees who holds them
    with ClusterRpcProxy({"AMQP_URI": bus.uri}) as cluster:
        cluster.org.register_ledger(str(uuid.uuid4()))  # its workers' pool connects
    with engine.connect() as conn:
        names = dict(conn.execute(text(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1"
        )).all())
    assert 1 <= names.get("tuantibu-org", 0) <= 2, names  # Database(pool_size=2)
    assert 1 <= names.get("tuantibu-org-relay", 0) <= 3, names  # its pool of 1 (+1), and its LISTEN


def listening_backends(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = :q"),
            {"q": f"LISTEN {notify_channel('org')}"},
        ).scalar_one()


def test_the_relay_in_a_running_service_survives_losing_its_database_connection(engine, bus, org_relay_service):
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = :q"
            ),
            {"q": f"LISTEN {notify_channel('org')}"},
        ).scalar_one()
    assert killed == 1

    _, event_id = register(engine)
    got = bus.next_message(ORG_QUEUE, timeout=5)
    assert got is not None, org_relay_service.log()
    assert got[0].body["event_id"] == event_id
    wait_for(
        lambda: "outbox relay for org failed (OperationalError); retrying" in org_relay_service.log(),
        timeout=5,
        what="the relay to notice",
    )

    # It listens again, so the next commit is published at once.
    wait_for(lambda: listening_backends(engine) == 1, timeout=5, what="the relay to LISTEN again")
    _, event_id = register(engine)
    committed = time.monotonic()
    got = bus.next_message(ORG_QUEUE, timeout=3)
    assert got is not None and got[0].body["event_id"] == event_id
    assert got[1] - committed < 0.5


class _PlainContainer:
    """What :class:`OutboxRelay` asks of a Nameko container, with plain threads, so the
    relay runs in this process and its wake pipe can be watched."""

    service_name = "org"

    def __init__(self, config: dict) -> None:
        self.config = config
        self.threads: list[threading.Thread] = []

    def spawn_managed_thread(self, fn, identifier=None) -> threading.Thread:
        thread = threading.Thread(target=fn, daemon=True, name=identifier)
        thread.start()
        self.threads.append(thread)
        return thread


def test_a_stopped_relay_is_no_longer_woken_directly_and_its_wake_pipe_is_closed(db_url, bus):
    provider = OutboxRelay(idle_poll=0.05)
    provider.container = _PlainContainer({"DATABASE_URL": db_url, "AMQP_URI": bus.uri})
    provider.setup()
    provider.start()
    try:
        assert _LOCAL_RELAYS["org"] is provider
        fds = (provider._woken_r, provider._woken_w)
        pipes = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]
        assert all(p.startswith("pipe:") for p in pipes)
    finally:
        provider.stop()
    assert "org" not in _LOCAL_RELAYS  # at once: later commits notify instead
    provider.container.threads[0].join(timeout=5)
    assert not provider.container.threads[0].is_alive()
    assert (provider._woken_r, provider._woken_w) == (None, None)
    for fd, pipe in zip(fds, pipes):
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") != pipe  # closed (the number may be reused)
        except FileNotFoundError:
            pass
    provider.wake()  # a late commit's wake finds nothing to write to, and no error
    provider.relay.engine.dispose()
