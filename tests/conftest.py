"""Fixtures shared by every test layer.

Integration and end-to-end tests use the real PostgreSQL and RabbitMQ on this
machine, isolated per run: a fresh database (and, for the bus, a fresh vhost) with a
random name, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from shared.stack import ROOT, Stack
from tests.bus import BusCapture, create_vhost, delete_vhost
from tests.e2e.api_client import ApiClient

ADMIN_DATABASE_URL = os.environ.get(
    "TEST_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_conn():
    conn = psycopg2.connect(ADMIN_DATABASE_URL)
    conn.autocommit = True
    return conn


def create_database() -> str:
    """Create an empty database with a random name and return its URL."""
    name = f"tuantibu_test_{uuid.uuid4().hex[:10]}"
    conn = _admin_conn()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    conn = _admin_conn()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def database_url():
    """A fresh, empty PostgreSQL database for this test session."""
    url = create_database()
    yield url
    drop_database(url)


# -- the whole system, for the end-to-end and browser tests -------------------------------
# Started once per session, exactly as ``make run`` starts it (``shared.stack``), on a
# fresh database and a fresh RabbitMQ vhost, with every process's log captured and every
# message on the bus copied for inspection.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningStack:
    def __init__(self, stack: Stack, env: dict, log_dir: Path, capture: BusCapture) -> None:
        self.stack = stack
        self.env = env
        self.log_dir = log_dir
        self.capture = capture
        self.gateway_url = stack.gateway_url()
        self.healthkit_url = env["HEALTHKIT_URL"]

    def api(self) -> ApiClient:
        return ApiClient(self.gateway_url, self.healthkit_url)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@pytest.fixture(scope="session")
def running(tmp_path_factory):
    database_url = create_database()
    vhost, amqp_uri = create_vhost(trace=True)
    capture = BusCapture(vhost)
    sim_port, gateway_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "TUANTIBU_MODE": "dev",
            "DATABASE_URL": database_url,
            "AMQP_URI": amqp_uri,
            "GATEWAY_ADDRESS": f"127.0.0.1:{gateway_port}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway_port}",
            "HEALTHKIT_SIM_ADDRESS": f"127.0.0.1:{sim_port}",
            "HEALTHKIT_URL": f"http://127.0.0.1:{sim_port}",
            "HEALTHKIT_RETRIES": "1",
            "HANDLER_BACKOFF_SECONDS": "0.1",
            "LOG_LEVEL": "DEBUG",
            "SWEEP_INTERVAL_SECONDS": "1",
            "SYNC_TIMES": "",
            "SYNC_BATCH_RETRIES": "1",
            "SYNC_MIN_INTERVAL_SECONDS": "30",
            "RECHECK_MIN_INTERVAL_SECONDS": "30",
            "FEED_INTERVAL_SECONDS": "1",
            "HOUSEKEEPING_SECONDS": "1",
            # every test request comes from 127.0.0.1: the per-address cap would be hit
            "SMS_DAILY_CAP_PER_CLIENT": "100000",
            "IDENTITY_MISMATCHES_PER_CLIENT": "100000",
            "DIGEST_CHECK_SECONDS": "1",
            "CHALLENGE_GRACE_SECONDS": "0",
        }
    )
    subprocess.run([sys.executable, "-m", "shared.migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-m", "shared.healthkit", "seed", "--count", "50", "--if-empty"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )
    log_dir = tmp_path_factory.mktemp("stack-logs")
    stack = Stack(env, log_dir=log_dir).start()
    try:
        stack.wait_ready(timeout=90)
        yield RunningStack(stack, env, log_dir, capture)
    finally:
        stack.stop()
        capture.close()
        delete_vhost(vhost)
        drop_database(database_url)


@pytest.fixture
def api(running) -> ApiClient:
    return running.api()
