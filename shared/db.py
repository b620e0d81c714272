"""PostgreSQL access for services: engines, and a Nameko DependencyProvider that gives
each worker one SQLAlchemy session and commits it (or rolls it back) when the worker
ends — the unit of work of every RPC and event handler.

psycopg2 blocks the whole process unless it yields to eventlet's hub, so when the
process is monkey-patched (``nameko run`` does that) we install psycogreen's wait
callback before the first connection.
"""

from __future__ import annotations

import weakref

from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

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


def make_engine(url: str | None = None, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    """An engine with a pool. Connections past ``pool_size`` (the overflow) are closed
    when returned, so under sustained load each costs a new PostgreSQL backend: size
    the pool for the load a process usually has."""
    make_green()
    return create_engine(
        url or settings().database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


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


class Database(DependencyProvider):
    """One session per worker; committed if the entrypoint returned, rolled back if it
    raised. Entrypoints that manage their own transactions (event handlers with
    retries) may commit early; the final commit is then a no-op."""

    def __init__(self, pool_size: int = 10) -> None:
        self.pool_size = pool_size
        self.engine: Engine | None = None
        self.sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def setup(self) -> None:
        url = self.container.config.get("DATABASE_URL") or settings().database_url
        self.engine = make_engine(url, self.pool_size)

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
