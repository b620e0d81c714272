"""The transactional outbox: a change and the event it causes commit together.

A service writes its events with :func:`add_event` into its own ``outbox`` table, in
the same transaction as the change. :class:`OutboxRelay` (a DependencyProvider every
publishing service declares) publishes committed rows to the service's Nameko event
exchange with publisher confirms, then deletes them.

- Woken at once after a commit that added events: in the service's own process
  directly (the session's ``after_commit``), from any other process by ``NOTIFY
  outbox_<service>`` (sent by :func:`add_event` there, delivered by PostgreSQL at
  commit); and every ``idle_poll`` seconds as a fallback. The direct wake spares each
  event a statement and PostgreSQL's notification round to the listener.
- Safe with several instances: a batch runs under a transaction-level advisory lock per
  service and claims rows ``FOR UPDATE SKIP LOCKED`` in id order, so per-aggregate
  order holds and no two relays publish the same rows at once. A crash between publish
  and delete publishes a row again: handlers are idempotent (``shared.handling``).
- Before publishing anything, the relay declares the durable queue of every subscriber
  its contracts list, and publishes those events ``mandatory``: an event is either
  queued or the batch fails and is retried.
- A batch is published in one go and then confirmed by the broker as a whole
  (:class:`ConfirmedPublisher`), instead of one round trip per message: thousands of
  messages a second (a run's work messages, one per ledger, are many).
"""

from __future__ import annotations

import json
import logging
import os
import select
import time
import uuid
from datetime import datetime, timezone

import amqp
import eventlet
import psycopg2
from kombu import Connection, Queue
from nameko.amqp.publish import UndeliverableMessage, get_connection
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Identity,
    Index,
    Insert,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    bindparam,
    delete,
    event,
    func,
    text,
)
from sqlalchemy import (
    select as sql_select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from shared.config import settings
from shared.db import make_engine
from shared.events import Contract, contract, published_by
from shared.handling import contract_queue

log = logging.getLogger(__name__)


def infrastructure_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the ``outbox`` and ``handled_events`` tables to a service's metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(80), nullable=False),
        Column("aggregate_id", String(80), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    handled = Table(
        "handled_events",
        metadata,
        Column("event_id", String(36), nullable=False),
        Column("handler", String(120), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("event_id", "handler"),
        Index("ix_handled_events_handled_at", "handled_at"),  # for forgetting old ones
    )
    register_outbox(outbox)
    from shared.handling import register_handled_table

    register_handled_table(handled)
    return outbox, handled


_OUTBOX_TABLES: dict[str, Table] = {}
_ADD_EVENT: dict[str, Insert] = {}  # per service, built once: events into its outbox


def register_outbox(outbox: Table) -> None:
    """Called by each service's models so :func:`add_event` can find its table."""
    _OUTBOX_TABLES[outbox.schema] = outbox
    _ADD_EVENT[outbox.schema] = outbox.insert().inline()  # (no RETURNING of the id)


def notify_channel(schema: str) -> str:
    return f"outbox_{schema}"


#: the relays running in this process, by service: woken directly after a commit
_LOCAL_RELAYS: dict[str, "OutboxRelay"] = {}


def _wake_relay(session: Session, service: str) -> None:
    """Wake ``service``'s relay when this transaction commits: directly if it runs in
    this process, otherwise by NOTIFY (e.g. a command-line tool, or a test)."""
    if service not in _LOCAL_RELAYS:
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": notify_channel(service)})
        return
    waking = session.info.get("outbox_wake")
    if waking is None:
        waking = session.info["outbox_wake"] = set()

        @event.listens_for(session, "after_commit")
        def _wake(_session) -> None:
            for name in waking:
                relay = _LOCAL_RELAYS.get(name)
                if relay is not None:
                    relay.wake()
            waking.clear()

        @event.listens_for(session, "after_rollback")
        def _forget(_session) -> None:
            waking.clear()

    waking.add(service)


def add_event(session: Session, event_type: str, data: dict, aggregate_id: str, wake: bool = True) -> str:
    """Write an event to the caller's outbox in the current transaction.

    ``event_type`` must be one of ``shared.events.CONTRACTS`` published by the service
    that owns ``session``'s schema; ``data`` is validated against the contract. With
    ``wake=False`` the relay is not woken for it (it goes with the next batch, within
    a second): for frequent events nobody waits for.
    """
    c: Contract = contract(event_type)
    event_id = str(uuid.uuid4())
    payload = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": datetime.now(timezone.utc).isoformat(),
        "aggregate_id": str(aggregate_id),
        "data": c.dump(data),
    }
    # built once: an insert built here per event cost more CPU than running it
    session.execute(_ADD_EVENT[c.source], {
        "event_id": event_id, "event_type": event_type, "aggregate_id": str(aggregate_id), "payload": payload,
    })
    if wake:
        _wake_relay(session, c.source)
    return event_id


def add_events(session: Session, event_type: str, items: list[tuple[dict, str]], wake: bool = True) -> int:
    """Write many events of one type in one statement (e.g. a run's work messages).
    ``wake`` as for :func:`add_event`."""
    if not items:
        return 0
    c: Contract = contract(event_type)
    occurred_at = datetime.now(timezone.utc).isoformat()
    rows = []
    for data, aggregate_id in items:
        event_id = str(uuid.uuid4())
        rows.append(
            {
                "event_id": event_id,
                "event_type": event_type,
                "aggregate_id": str(aggregate_id),
                "payload": {
                    "event_id": event_id,
                    "event_type": event_type,
                    "occurred_at": occurred_at,
                    "aggregate_id": str(aggregate_id),
                    "data": c.dump(data),
                },
            }
        )
    session.execute(_ADD_EVENT[c.source], rows)
    if wake:
        _wake_relay(session, c.source)
    return len(rows)


def subscriber_queues(contracts: list[Contract], config: dict) -> list[Queue]:
    """The durable queue of every subscriber, bound as its handler binds it."""
    return [
        contract_queue(
            c, c.queue_name(s.service, s.method), get_event_exchange(c.source, config), s.only,
            durable=True, auto_delete=False, exclusive=False,
        )
        for c in contracts
        for s in c.subscribers
    ]


def declare_queues(amqp_uri: str, queues: list[Queue]) -> None:
    with get_connection(amqp_uri) as conn:
        for queue in queues:
            queue.bind(conn).declare()


class ConfirmedPublisher:
    """Publishes a batch of messages on one confirm-mode channel, then waits until the
    broker has confirmed every one. Raises (and drops the connection, so the next batch
    starts clean) if any is nacked, returned as unroutable, or not confirmed in time."""

    def __init__(self, amqp_uri: str, timeout: float = 10.0) -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self._connection: Connection | None = None
        self._channel = None
        self._tag = 0
        self._unconfirmed: set[int] = set()
        self._failed = False

    def _open(self):
        if self._connection is None:
            self._connection = Connection(self.amqp_uri)
            self._connection.connect()
            channel = self._connection.connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self._channel, self._tag = channel, 0
        return self._channel

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > tag}
        else:
            self._unconfirmed.discard(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._failed = True
        self._on_ack(tag, multiple)

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        self._failed = True

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
        self._connection = self._channel = None

    def publish_all(self, messages: list[tuple[bytes, str, str, bool, str]]) -> None:
        """``messages``: (body, exchange, routing_key, mandatory, message_id)."""
        try:
            channel = self._open()
            self._failed = False
            for body, exchange, routing_key, mandatory, message_id in messages:
                channel.basic_publish(
                    amqp.Message(
                        body, content_type="application/json", content_encoding="utf-8",
                        delivery_mode=2, message_id=message_id,
                    ),
                    exchange=exchange, routing_key=routing_key, mandatory=mandatory,
                )
                self._tag += 1
                self._unconfirmed.add(self._tag)
            deadline = time.monotonic() + self.timeout
            while self._unconfirmed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the broker did not confirm the batch in time")
                self._connection.connection.drain_events(timeout=remaining)
            if self._failed:
                raise UndeliverableMessage()
        except BaseException:
            self._unconfirmed.clear()
            self.close()
            raise


class Relay:
    """Publishes one service's outbox. Plain code; :class:`OutboxRelay` runs it."""

    def __init__(self, service: str, engine: Engine, amqp_uri: str, config: dict, batch_size: int = 500):
        self.service = service
        self.engine = engine
        self.amqp_uri = amqp_uri
        self.config = config
        self.batch_size = batch_size
        self.outbox = _OUTBOX_TABLES[service]
        self.contracts = {c.event_type: c for c in published_by(service)}
        self.exchange = get_event_exchange(service, config)
        self.publisher = ConfirmedPublisher(amqp_uri)
        self.lock_key = f"outbox:{service}"
        self.claim = self._claim_statement()

    def declare(self) -> None:
        declare_queues(self.amqp_uri, subscriber_queues(list(self.contracts.values()), self.config))

    def relay_batch(self) -> int:
        """Publish up to one batch; returns how many rows were published.

        One statement takes the service's relay lock, claims the oldest rows and deletes
        them (returned to the table if publishing fails: the transaction rolls back)."""
        with self.engine.begin() as conn:
            rows = sorted(conn.execute(self.claim, {"k": self.lock_key}).all(), key=lambda r: r.id)
            if not rows:
                return 0
            self.publisher.publish_all(
                [
                    (
                        json.dumps(row.payload).encode(),
                        self.exchange.name,
                        self.contracts[row.event_type].routing_key(row.payload["data"]),
                        # mandatory: returned (and kept here) if no subscriber's queue is bound
                        self.contracts[row.event_type].has_subscriber_for(row.payload["data"]),
                        row.payload["event_id"],
                    )
                    for row in rows
                ]
            )
            return len(rows)

    def _claim_statement(self):
        """``DELETE … RETURNING`` of the oldest ``batch_size`` rows no other relay holds,
        only if this relay got the service's transaction-level lock (a CTE with a
        volatile function runs once)."""
        outbox = self.outbox
        locked = sql_select(func.pg_try_advisory_xact_lock(func.hashtext(bindparam("k"))).label("got")).cte("locked")
        oldest = (
            sql_select(outbox.c.id)
            .where(sql_select(locked.c.got).scalar_subquery())
            .order_by(outbox.c.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        return (
            delete(outbox)
            .where(outbox.c.id.in_(oldest.scalar_subquery()))
            .returning(outbox.c.id, outbox.c.event_type, outbox.c.payload)
        )

    def relay_all(self) -> int:
        total = 0
        while True:
            n = self.relay_batch()
            total += n
            if n < self.batch_size:
                return total


class OutboxRelay(DependencyProvider):
    """Runs :class:`Relay` for the service in a managed green thread."""

    def __init__(self, idle_poll: float = 1.0) -> None:
        self.idle_poll = idle_poll
        self.relay: Relay | None = None
        self._running = False

    def setup(self) -> None:
        service = self.container.service_name
        url = self.container.config.get("DATABASE_URL") or settings().database_url
        amqp_uri = self.container.config.get("AMQP_URI") or settings().amqp_uri
        name = f"tuantibu-{service}-relay"
        self.relay = Relay(
            service, make_engine(url, pool_size=1, max_overflow=1, application_name=name), amqp_uri, self.container.config
        )
        self.dsn = self.relay.engine.url.set(
            drivername="postgresql", query={**self.relay.engine.url.query, "application_name": name}
        ).render_as_string(hide_password=False)

    def start(self) -> None:
        self.relay.declare()
        self._running = True
        self._woken_r, self._woken_w = os.pipe()
        os.set_blocking(self._woken_w, False)
        self._wake_pending = False
        self.container.spawn_managed_thread(self._run, identifier="outbox_relay")
        _LOCAL_RELAYS[self.relay.service] = self

    def wake(self) -> None:
        """Relay now (called after a commit in this process). At most one byte waits
        in the pipe: a wake already pending covers this commit too."""
        if self._wake_pending or self._woken_w is None:
            return
        self._wake_pending = True
        try:
            os.write(self._woken_w, b"\0")
        except OSError:  # stopped
            self._wake_pending = False

    def stop(self) -> None:
        self._running = False
        if self.relay is not None:
            self._unregister()  # commits from now on notify (another instance may relay them)
            self.relay.publisher.close()

    kill = stop

    def get_dependency(self, worker_ctx) -> Relay:
        return self.relay

    def _run(self) -> None:
        channel = notify_channel(self.relay.service)
        try:
            while self._running:
                conn = None
                try:
                    conn = psycopg2.connect(self.dsn)
                    conn.autocommit = True
                    conn.cursor().execute(f"LISTEN {channel}")
                    self.relay.relay_all()
                    while self._running:
                        ready, _, _ = select.select([conn, self._woken_r], [], [], self.idle_poll)
                        if self._woken_r in ready:
                            os.read(self._woken_r, 4096)
                            self._wake_pending = False  # before relaying: a later commit wakes again
                        conn.poll()
                        conn.notifies.clear()
                        self.relay.relay_all()
                except Exception as exc:  # noqa: BLE001 - keep relaying after any failure
                    log.warning("outbox relay for %s failed (%s); retrying", self.relay.service, type(exc).__name__)
                    eventlet.sleep(1.0)
                finally:
                    if conn is not None:
                        conn.close()
        finally:
            self._close_wake()

    def _unregister(self) -> None:
        if _LOCAL_RELAYS.get(self.relay.service) is self:
            del _LOCAL_RELAYS[self.relay.service]

    def _close_wake(self) -> None:
        """The relay thread ended: no more direct wakes, and its pipe is closed."""
        self._unregister()
        fds, self._woken_r, self._woken_w = (self._woken_r, self._woken_w), None, None
        for fd in fds:
            if fd is not None:
                os.close(fd)
