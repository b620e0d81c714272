"""``shared.db.make_engine``'s pool: an idle connection whose server side has gone is
replaced before use; a connection used moments ago is not pinged; no overflow
connections are opened (a worker past the pool waits for one)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from shared.db import make_engine
from tests.conftest import ADMIN_DATABASE_URL


def _end_backend(pid: int) -> None:
    admin = sa.create_engine(ADMIN_DATABASE_URL, poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        # the backend is gone once it no longer shows
        for _ in range(100):
            with admin.connect() as conn:
                if not conn.execute(sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).first():
                    return
            time.sleep(0.02)
    finally:
        admin.dispose()


def _backend(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()


def test_an_idle_connection_whose_backend_ended_is_replaced_without_an_error(database_url):
    engine = make_engine(database_url, pool_size=1, ping_after_idle=0.2)
    try:
        first = _backend(engine)
        _end_backend(first)
        time.sleep(0.3)
        assert _backend(engine) != first  # pinged, found gone, connected afresh
    finally:
        engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged_and_the_pool_renews_after_one_failure(database_url):
    engine = make_engine(database_url, pool_size=1, ping_after_idle=60)
    try:
        first = _backend(engine)
        _end_backend(first)
        # no ping before this statement (a ping would have replaced the connection)
        with pytest.raises(sa.exc.OperationalError):
            _backend(engine)
        assert _backend(engine) != first
    finally:
        engine.dispose()


def test_a_checkout_past_the_pool_waits_for_a_returned_connection(database_url):
    engine = make_engine(database_url, pool_size=2)
    try:
        held = [engine.connect() for _ in range(2)]
        pids = {conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() for conn in held}
        got = []
        waiter = threading.Thread(target=lambda: got.append(_backend(engine)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not got  # no third connection was opened
        held.pop().close()
        waiter.join(5)
        assert got and got[0] in pids  # it got the one returned
        held.pop().close()
    finally:
        engine.dispose()


def _two_reads_of_now(engine):
    with engine.connect() as conn:
        first = conn.execute(sa.text("SELECT now()")).scalar()
        time.sleep(0.01)
        return first, conn.execute(sa.text("SELECT now()")).scalar()


def test_an_autocommit_engine_runs_each_statement_as_its_own_transaction_for_good(database_url):
    # now() is the transaction's start: one value within a transaction, a new one per
    # statement in autocommit, and the connection stays so when it comes back from the pool
    plain = make_engine(database_url, pool_size=1)
    single = make_engine(database_url, pool_size=1, autocommit=True)
    try:
        first, second = _two_reads_of_now(plain)
        assert first == second
        for _ in range(2):
            first, second = _two_reads_of_now(single)
            assert second > first
        with single.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit
    finally:
        plain.dispose()
        single.dispose()
