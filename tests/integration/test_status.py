"""The operator's status check (``python -m shared.status``) on the real PostgreSQL and
RabbitMQ: it names the service that is not running, the outbox that does not move and
the dead letters, and says nothing when all is well."""

from __future__ import annotations

import re
import uuid

import pika
import psycopg2
import pytest

from shared.db import make_engine
from shared.handling import DEAD_LETTER_QUEUE
from shared.status import SERVICES, expected_queues, outboxes_and_connections, queues, report
from tests.bus import create_vhost, delete_vhost
from tests.integration.support import migrated_database

JOIN_REQUESTS = "evt-member-join_requested--verify.on_join_requested"


@pytest.fixture(scope="module")
def database_url():
    with migrated_database() as url:
        yield url


@pytest.fixture
def amqp_uri():
    vhost, uri = create_vhost(trace=False)
    try:
        yield uri
    finally:
        delete_vhost(vhost)


def without_connections(found: list[str]) -> list[str]:
    """The server's connections are every test's (the session stack's too), so whether
    they need a look is not this test's to say (tests/unit/test_status_problems.py)."""
    return [line for line in found if not line.startswith("PostgreSQL has")]


def test_a_fresh_vhost_says_which_services_never_started(database_url, amqp_uri):
    _, found = report(database_url, amqp_uri)
    assert sorted(without_connections(found)) == sorted(f"{s} has never started here: none of its {n} queues exists" for s, n in (
        (s, sum(1 for _, owner, _ in expected_queues() if owner == s)) for s in SERVICES
    ))


def test_all_well_then_a_stopped_handler_a_stuck_outbox_and_a_dead_letter(database_url, amqp_uri):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        consumers = {}
        for name, _, _ in expected_queues():  # every service running: each queue has a consumer
            channel.queue_declare(name, durable=True)
            consumers[name] = channel.basic_consume(name, lambda *args: None)
        table, found = report(database_url, amqp_uri)
        assert without_connections(found) == []
        assert "dead letters: 0" in table

        channel.basic_cancel(consumers[JOIN_REQUESTS])  # verify's join handler went away...
        channel.basic_publish("", JOIN_REQUESTS, b"{}")  # ...and a join request waits for it
        conn = psycopg2.connect(database_url)
        with conn, conn.cursor() as cur:  # member's relay stopped five minutes ago
            cur.execute(
                "INSERT INTO member.outbox (event_id, event_type, aggregate_id, payload, created_at) "
                "VALUES (%s, 'member.joined', %s, '{}', now() - interval '5 minutes')",
                (str(uuid.uuid4()), str(uuid.uuid4())),
            )
        conn.close()
        channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
        channel.basic_publish("", DEAD_LETTER_QUEUE, b"{}")

        table, found = report(database_url, amqp_uri)
        found = without_connections(found)
        assert len(found) == 3, found
        assert found[0].startswith("member: 1 event(s) committed but not published for 30")
        assert found[1] == (
            f"nothing consumes {JOIN_REQUESTS} (member.join_requested → on_join_requested; 1 message(s) waiting)"
        )
        assert found[2] == "1 event(s) in the dead-letter queue: python -m shared.deadletter list"
        assert "dead letters: 1" in table
        # it only looked: the messages are still there
        states, dead = queues(amqp_uri)
        assert dead == 1 and [q.ready for q in states if q.name == JOIN_REQUESTS] == [1]
    finally:
        connection.close()


def test_connections_are_counted_by_who_holds_them(database_url, amqp_uri):
    engine = make_engine(database_url, pool_size=3, application_name="tuantibu-member")
    held = [engine.connect() for _ in range(3)]
    try:
        for c in held:
            c.exec_driver_sql("SELECT 1")
        table, _ = report(database_url, amqp_uri)
        _, connections = outboxes_and_connections(database_url)
        assert connections.here["tuantibu-member"] == 3 and connections.here["tuantibu-status"] == 1
        assert connections.in_use >= 4 and connections.allowed > connections.in_use
        assert re.search(r"^  tuantibu-member +3$", table, re.M), table
        assert re.search(rf"^PostgreSQL connections: \d+ open of {connections.allowed} allowed", table, re.M)
    finally:
        for c in held:
            c.close()
        engine.dispose()
