"""PostgreSQL access for services: engines, and a Nameko DependencyProvider that gives
each worker one SQLAlchemy session and commits it (or rolls it back) when the worker
ends — the unit of work of every RPC and event handler.

psycopg2 blocks the whole process unless it yields to eventlet's hub, so when the
process is monkey-patched (``nameko run`` does that) we install psycogreen's wait
callback before the first connection.
"""

from __future__ import annotations

import re
import time
import weakref
import zlib

from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, MetaData, TextClause, bindparam, create_engine, event, exc, text
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from shared.config import settings

_green = False


def make_green() -> None:
    """Make psycopg2 cooperative if eventlet has patched this process."""
    global _green
    if _green:
        return
    try:
        import eventlet.patcher

        if eventlet.patcher.is_monkey_patched("socket"):
            from psycogreen.eventlet import patch_psycopg

            patch_psycopg()
            _green = True
    except ImportError:  # pragma: no cover - eventlet is a dependency
        pass


# A pooled connection idle longer than this is pinged before use (see make_engine).
PING_AFTER_IDLE_SECONDS = 2.0


def make_engine(
    url: str | None = None, pool_size: int = 5, max_overflow: int = 0,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS, autocommit: bool = False,
    application_name: str = "tuantibu", **options,
) -> Engine:
    """An engine with a pool of ``pool_size`` connections. With no overflow (the
    default) a worker past that waits for a connection instead of opening a PostgreSQL
    backend that is closed again when returned: under sustained load that churn cost a
    fork and a cold backend per transaction or two.

    A connection idle more than ``ping_after_idle`` seconds is pinged when checked out
    and replaced if the server has gone (restarted, or ended it). One used moments ago
    is not: under load that ping was a round trip before every transaction. If the
    server went in that moment, the statement fails once and SQLAlchemy renews the pool.

    ``autocommit=True`` is for a store used one statement at a time (a dev outbox, the
    simulator's reads): each statement is its own transaction, so it costs one round
    trip instead of three (BEGIN, the statement, COMMIT or ROLLBACK). The connections
    stay in that mode for good: an autocommit *option* on a shared pool would be reset
    with a statement at every return.

    ``application_name`` is what PostgreSQL shows for these connections
    (``pg_stat_activity``, ``python -m shared.status``): who holds them.
    """
    make_green()
    engine = create_engine(
        url or settings().database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        connect_args={"application_name": application_name, **options.pop("connect_args", {})},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
        **options,
    )
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.DisconnectionError() from error  # the pool connects afresh
            raise


def create_store(engine: Engine, schema: str, metadata: MetaData) -> None:
    """Create ``schema`` and ``metadata``'s tables if missing, for a store that is not
    migrated (the dev SMS outbox, the Health Kit simulator). Several processes may start
    at once: an advisory lock serialises them, in one transaction even on an autocommit
    engine (the lock must hold until the tables exist, or their CREATEs collide)."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(f"{schema}:schema".encode())})
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
            metadata.create_all(conn)


_NAMED_PARAMS = PGDialect_psycopg2(paramstyle="named")


def compiled_once(statement: UpdateBase, *returning) -> TextClause:
    """``statement`` compiled now, once, as SQL text with its typed parameters; build it
    with ``bindparam("name")`` for each value that varies, and execute the result with
    those names.

    For PostgreSQL's ``INSERT … ON CONFLICT``: SQLAlchemy 2.0 has no cache key for its
    PostgreSQL ``Insert`` (``inherit_cache = False``) nor for ON CONFLICT clauses, so one
    built per call is compiled per call, the whole SQL compiler for every row (under the
    join benchmark, 2–11% of a service's CPU). Text is cached like any statement.
    ``returning`` names the columns of its RETURNING clause, if any, so rows come back
    typed."""
    compiled = statement.compile(dialect=_NAMED_PARAMS)
    # the cast the dialect renders after some parameters (``:payload::JSONB``) would hide
    # the name from text(); it goes, and text() renders it again from the parameter's type
    sql = text(re.sub(r"(:\w+)::\w+", r"\1", compiled.string)).bindparams(*(  # literals in the statement keep their values
        bindparam(name, b.value, type_=b.type, required=b.required) for b, name in compiled.bind_names.items()
    ))
    return sql.columns(*returning) if returning else sql


def array_literal(values) -> str:
    """A list as one PostgreSQL array literal (``'{"a","b",NULL}'``), for a statement to
    cast (``CAST(:refs AS text[])``). psycopg2 would send a Python list as an ARRAY of
    one quoted constant per element for the server to parse: for the thousands of values
    of a batch that costs more, on both sides, than one string. Datetimes are written
    in ISO 8601 with their offset."""
    parts = []
    append = parts.append
    for v in values:
        if v is None:
            append("NULL")
            continue
        if not isinstance(v, str):
            v = v.isoformat() if hasattr(v, "isoformat") else str(v)
        if "\\" in v or '"' in v:
            v = v.replace("\\", "\\\\").replace('"', '\\"')
        append(f'"{v}"')
    return "{" + ",".join(parts) + "}"


def service_health(service: str, session: Session) -> dict:
    """A service's answer to the gateway's readiness check: it runs, and it can reach its
    database (a service that answers but cannot would fail every request). The reason is
    the error's type only: its message names the server, and nothing here needs more."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return {"service": service, "ok": False, "problem": f"its database is unreachable ({type(exc).__name__})"}
    return {"service": service, "ok": True}


class Database(DependencyProvider):
    """One session per worker; committed if the entrypoint returned, rolled back if it
    raised. Entrypoints that manage their own transactions (event handlers with
    retries) may commit early; the final commit is then a no-op."""

    def __init__(self, pool_size: int | None = None, spare: int = 0) -> None:
        """``pool_size``: by default ``DB_POOL_SIZE``, plus ``spare`` for a service
        whose timers hold connections beside its workers'."""
        self.pool_size = pool_size
        self.spare = spare
        self.engine: Engine | None = None
        self.sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def setup(self) -> None:
        url = self.container.config.get("DATABASE_URL") or settings().database_url
        size = (self.pool_size or settings().db_pool_size) + self.spare
        self.engine = make_engine(url, size, application_name=f"tuantibu-{self.container.service_name}")

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx) -> Session:
        session = Session(self.engine, expire_on_commit=False)
        self.sessions[worker_ctx] = session
        return session

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        self.finish(worker_ctx, exc_info)

    def finish(self, worker_ctx, exc_info=None) -> None:
        """Commit the worker's session (roll back if it raised); once per worker."""
        session = self.sessions.pop(worker_ctx, None)
        if session is None:
            return
        try:
            if exc_info is None:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()
