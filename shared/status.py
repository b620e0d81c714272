"""What the operator on call looks at first: is every event getting through?

    python -m shared.status      # a table, then what needs a look; exit 1 if anything does

- Each service's outbox: events committed but not yet on the bus. A relay publishes
  within a second; an event waiting longer than a minute means that service's relay is
  stuck (RabbitMQ unreachable from it, say) and everything downstream of it waits.
- Each RPC queue and each durable event queue: messages waiting, and consumers. No
  consumer means no instance of that service is running: requests time out (the gateway
  answers 503) and its events pile up until one starts.
- The dead-letter queue: events whose handler still failed after its retries
  (``python -m shared.deadletter list`` shows them, ``replay`` puts them back).
- PostgreSQL's connections: how many are open, by whom (each process names its pools),
  against ``max_connections``. Past it, a service instance that starts, or a pool that
  grows under load, is refused ("too many clients") and its work fails.

Reads only: it opens no consumer and takes no message.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pika
import pika.exceptions
import psycopg2

from shared.config import settings
from shared.events import CONTRACTS
from shared.handling import DEAD_LETTER_QUEUE

#: an event older than this in an outbox means its relay is stuck
OUTBOX_STUCK_SECONDS = 60
#: connections in use, as a share of those PostgreSQL allows, that need a look
CONNECTIONS_HIGH = 0.9
#: services with an outbox (each publishes events) and with RPC entrypoints
SERVICES = sorted({c.source for c in CONTRACTS.values()})


@dataclass(frozen=True)
class Outbox:
    service: str
    waiting: int
    oldest_seconds: float  # 0 when none waits


@dataclass(frozen=True)
class QueueState:
    name: str
    service: str  # who consumes it
    what: str
    ready: int | None  # None: the queue does not exist
    consumers: int


def expected_queues() -> list[tuple[str, str, str]]:
    """(queue, consuming service, what it carries) for every queue a running system has."""
    queues = [(f"rpc-{s}", s, "RPC requests") for s in SERVICES]
    queues += [
        (c.queue_name(sub.service, sub.method), sub.service, f"{c.event_type} → {sub.method}")
        for c in CONTRACTS.values()
        for sub in c.subscribers
    ]
    return queues


@dataclass(frozen=True)
class Connections:
    allowed: int  # max_connections less those reserved for superusers
    in_use: int  # to the whole server, every database
    here: dict[str, int]  # to this database, by application name


def outboxes_and_connections(database_url: str) -> tuple[list[Outbox], Connections]:
    query = " UNION ALL ".join(
        f"SELECT '{s}', count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM {s}.outbox"
        for s in SERVICES
    )
    conn = psycopg2.connect(database_url, application_name="tuantibu-status")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query)
            boxes = [Outbox(service, int(n), float(age)) for service, n, age in cur.fetchall()]
            cur.execute(
                "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            )
            allowed, in_use = cur.fetchone()
            cur.execute(
                "SELECT coalesce(nullif(application_name, ''), '(unnamed)'), count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend' GROUP BY 1 ORDER BY 1"
            )
            return boxes, Connections(allowed, in_use, dict(cur.fetchall()))
    finally:
        conn.close()


def queues(amqp_uri: str) -> tuple[list[QueueState], int]:
    """Every expected queue's state, and how many messages the dead-letter queue holds."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()

        def peek(name: str) -> tuple[int | None, int]:
            nonlocal channel
            try:
                ok = channel.queue_declare(name, passive=True).method
                return ok.message_count, ok.consumer_count
            except pika.exceptions.ChannelClosedByBroker:  # 404: no such queue
                channel = connection.channel()
                return None, 0

        states = [QueueState(name, service, what, *peek(name)) for name, service, what in expected_queues()]
        dead, _ = peek(DEAD_LETTER_QUEUE)
        return states, dead or 0
    finally:
        connection.close()


def problems(
    boxes: list[Outbox], states: list[QueueState], dead_letters: int, connections: Connections | None = None
) -> list[str]:
    """What needs a look, in words an operator can act on; empty when all is well."""
    found = [
        f"{b.service}: {b.waiting} event(s) committed but not published for {b.oldest_seconds:.0f} s "
        f"(is {b.service}'s outbox relay running and connected to RabbitMQ? its log says)"
        for b in boxes
        if b.oldest_seconds > OUTBOX_STUCK_SECONDS
    ]
    for service in sorted({q.service for q in states}):
        own = [q for q in states if q.service == service]
        missing = [q for q in own if q.ready is None]
        idle = [q for q in own if q.ready is not None and q.consumers == 0]
        if len(missing) == len(own):
            found.append(f"{service} has never started here: none of its {len(own)} queues exists")
            continue
        found += [f"queue {q.name} ({q.what}) does not exist: is {service} out of date?" for q in missing]
        waiting = sum(q.ready for q in idle)
        if idle and len(idle) + len(missing) == len(own):
            found.append(f"no {service} instance is running: nothing consumes its {len(idle)} queues "
                         f"({waiting} message(s) waiting)")
        else:
            found += [f"nothing consumes {q.name} ({q.what}; {q.ready} message(s) waiting)" for q in idle]
    if dead_letters:
        found.append(f"{dead_letters} event(s) in the dead-letter queue: python -m shared.deadletter list")
    if connections and connections.in_use >= CONNECTIONS_HIGH * connections.allowed:
        found.append(
            f"PostgreSQL has {connections.in_use} of the {connections.allowed} connections it allows open: "
            "one more service instance may be refused (too many clients). Raise max_connections "
            "or lower DB_POOL_SIZE (README: PostgreSQL connections)"
        )
    return found


def report(database_url: str, amqp_uri: str) -> tuple[str, list[str]]:
    """The table an operator reads, and the problems under it."""
    boxes, connections = outboxes_and_connections(database_url)
    states, dead = queues(amqp_uri)
    lines = ["outbox        waiting  oldest"]
    lines += [f"{b.service:<12} {b.waiting:>8}  {b.oldest_seconds:>5.0f} s" for b in boxes]
    lines += ["", f"{'queue':<64} {'waiting':>8} {'consumers':>9}"]
    lines += [
        f"{q.name:<64} {'missing' if q.ready is None else q.ready:>8} {q.consumers:>9}" for q in states
    ]
    lines += ["", f"dead letters: {dead}"]
    lines += ["", f"PostgreSQL connections: {connections.in_use} open of {connections.allowed} allowed; to this database:"]
    lines += [f"  {name:<30} {n:>4}" for name, n in connections.here.items()]
    return "\n".join(lines), problems(boxes, states, dead, connections)


def main(argv: list[str] | None = None) -> int:
    table, found = report(settings().database_url, settings().amqp_uri)
    print(table)
    print()
    if not found:
        print("all well: every outbox is moving, every queue has a consumer, no dead letters, "
              "connections to spare")
        return 0
    print("needs a look:")
    for problem in found:
        print(f"- {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
