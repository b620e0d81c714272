"""Idempotent, retried event handling, with a dead-letter queue after that.

Nameko delivers events at least once and, by default, acks and drops a message whose
handler raised. ``@handles("org.ledger_registered")`` wraps a service method so that:

- the payload is checked against its contract (``shared.events``); a message that does
  not fit goes straight to the dead-letter queue;
- the event id is recorded in the service's ``handled_events`` table in the same
  transaction as the handler's changes, so a redelivered event is skipped;
- a failing attempt is rolled back and retried with exponential backoff, at most
  ``HANDLER_RETRIES`` times; then the message is published to the dead-letter queue
  ``tuantibu.dead-letter`` (with the handler's queue, the error type and the attempts
  in its headers) where an operator can inspect and replay it
  (``python -m shared.deadletter``).

The wrapped method receives the loaded ``data`` and the envelope; it uses
``self.db`` (a :class:`shared.db.Database`) and must not commit itself.

Handled event ids are kept ``HANDLED_EVENTS_DAYS`` days (default 30), far longer than
any redelivery takes; a service that handles events inherits
:class:`ForgetsHandledEvents`, whose timer deletes older ones.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import eventlet
from kombu import Exchange, Queue, binding
from marshmallow import ValidationError
from nameko.amqp.publish import Publisher
from nameko.events import SERVICE_POOL, EventHandler
from nameko.timer import timer
from sqlalchemy import Table, TextClause, bindparam, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.config import settings
from shared.db import compiled_once
from shared.errors import TuantibuError
from shared.events import Contract, contract
from shared.logs import where

log = logging.getLogger(__name__)

DEAD_LETTER_QUEUE = "tuantibu.dead-letter"
_HANDLED_TABLES: dict[str, Table] = {}
_FIRST_TIME: dict[str, TextClause] = {}  # per service: record an event as handled, unless it was


def register_handled_table(table: Table) -> None:
    _HANDLED_TABLES[table.schema] = table
    _FIRST_TIME[table.schema] = compiled_once(
        insert(table)
        .values(event_id=bindparam("event_id"), handler=bindparam("handler"))
        .on_conflict_do_nothing()
        .returning(table.c.event_id),
        table.c.event_id,
    )


def contract_queue(c: Contract, name: str, exchange: Exchange, only: tuple[str, ...] = (), **flags) -> Queue:
    """The queue ``name`` bound to ``c``'s events on ``exchange``: to every one, or with
    the contract's ``route_by``, to those of the values in ``only``."""
    return Queue(name, bindings=[binding(exchange, routing_key=k) for k in c.binding_keys(only)], **flags)


class ContractHandler(EventHandler):
    """Nameko's event handler, its queue bound by the contract: a subscriber that takes
    only some of a routed event's values never receives the others (a handler the
    contract does not list, such as the gateway's broadcast ones, receives all)."""

    def __init__(self, event_type: str, **kwargs) -> None:
        self.contract = contract(event_type)
        super().__init__(self.contract.source, self.contract.name, **kwargs)

    def setup(self) -> None:
        super().setup()
        listed = self.contract.subscriber(self.container.service_name, self.method_name)
        q = self.queue
        self.queue = contract_queue(
            self.contract, q.name, q.exchange, listed.only if listed else (),
            durable=q.durable, auto_delete=q.auto_delete, exclusive=q.exclusive,
        )


def dead_letter_queue() -> Queue:
    return Queue(DEAD_LETTER_QUEUE, exchange=Exchange(""), routing_key=DEAD_LETTER_QUEUE, durable=True)


def dead_letter(payload: Any, queue: str, error: str, attempts: int) -> None:
    """Park a message for an operator: it is kept until inspected and replayed."""
    publisher = Publisher(settings().amqp_uri, use_confirms=True)
    publisher.publish(
        payload,
        exchange=Exchange(""),
        routing_key=DEAD_LETTER_QUEUE,
        declare=[dead_letter_queue()],
        headers={"x-original-queue": queue, "x-error": error, "x-attempts": attempts},
    )


def describe(exc: BaseException) -> str:
    # Our own errors never carry personal data; others (a driver error's DETAIL line
    # can quote a value) are described by type and where they were raised, only.
    if isinstance(exc, TuantibuError):
        return str(exc)
    return f"{type(exc).__name__} at {where(exc)}"


def load_or_park(c: Contract, payload: Any, service_name: str, method_name: str) -> dict | None:
    """The event's data if the envelope fits ``c``; otherwise the message is parked in
    the dead-letter queue at once (it would fail on every delivery) and None returned."""
    try:
        str(payload["event_id"])
        return c.load(payload["data"])
    except (KeyError, TypeError, ValidationError) as exc:
        log.error("event for %s.%s does not fit contract %s; dead-lettered", service_name, method_name, c.event_type)
        dead_letter(payload, c.queue_name(service_name, method_name), f"contract: {type(exc).__name__}", 0)
        return None


def handle(service: Any, c: Contract, method: Callable, payload: dict) -> None:
    service_name = service.name
    handler = f"{service_name}.{method.__name__}"
    queue = c.queue_name(service_name, method.__name__)
    data = load_or_park(c, payload, service_name, method.__name__)
    if data is None:
        return
    event_id = str(payload["event_id"])
    if not c.takes(c.subscriber(service_name, method.__name__), data):
        # not this handler's concern (its queue is not bound to such events; one came
        # by a binding from before routing): no transaction, nothing to remember
        return

    first_time_sql = _FIRST_TIME[service_name]
    session = service.db
    retries = max(1, settings().handler_retries)
    backoff = settings().handler_backoff_seconds
    for attempt in range(1, retries + 1):
        try:
            first_time = session.execute(first_time_sql, {"event_id": event_id, "handler": handler}).first()
            if first_time is None:
                session.rollback()
                log.info("event %s already handled by %s; skipped", event_id, handler)
                return
            method(service, data, payload)
            session.commit()
            return
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then parked
            session.rollback()
            if attempt == retries:
                log.error(
                    "event %s failed %d times in %s (%s); dead-lettered",
                    event_id, attempt, handler, describe(exc),
                )
                dead_letter(payload, queue, describe(exc), attempt)
                return
            delay = backoff * (4 ** (attempt - 1))
            log.warning(
                "event %s failed in %s (%s); retry %d in %.1fs",
                event_id, handler, describe(exc), attempt, delay,
            )
            eventlet.sleep(delay)


def handles(event_type: str) -> Callable:
    """Declare a service method as the idempotent, retried handler of ``event_type``, a
    subscriber its contract lists (which says, for a routed event, the values it takes)."""
    c = contract(event_type)

    def decorator(method: Callable) -> Callable:
        @functools.wraps(method)
        def entrypoint(self, payload):
            handle(self, c, method, payload)

        # handle() catches every handler error; only a failure to park a message (the
        # broker gone) escapes, and then the message must go back, not be dropped
        return ContractHandler.decorator(event_type, handler_type=SERVICE_POOL, requeue_on_error=True)(entrypoint)

    return decorator


def forget_handled_events(session: Session, service_name: str, keep_days: int, limit: int = 10_000) -> int:
    """Delete up to ``limit`` handled event ids older than ``keep_days`` days."""
    table = _HANDLED_TABLES[service_name]
    old = (
        select(table.c.event_id, table.c.handler)
        .where(table.c.handled_at < func.now() - func.make_interval(0, 0, 0, keep_days))
        .limit(limit)
    )
    return session.execute(delete(table).where(tuple_(table.c.event_id, table.c.handler).in_(old))).rowcount


class ForgetsHandledEvents:
    """For a service with ``@handles`` methods and a ``db``: its handled event ids are
    kept ``HANDLED_EVENTS_DAYS`` days, so the table does not grow for ever.

    Inherit it as ``handling.ForgetsHandledEvents``, not by importing the name: ``nameko
    run <module>`` starts every class in the module that has an entrypoint."""

    @timer(interval=settings().housekeeping_seconds)
    def forget_handled_events(self) -> None:
        forgotten = forget_handled_events(self.db, self.name, settings().handled_events_days)
        if forgotten:
            log.info("forgot %d handled event ids older than %d days", forgotten, settings().handled_events_days)
