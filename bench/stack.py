"""A private Tuantibu stack for one benchmark run, started the way the end-to-end tests
start theirs (``tests/e2e/conftest.py``): a fresh database and RabbitMQ vhost, free
ports, migrations, the Health Kit simulator seeded, every process from
``shared.stack.Stack`` with its log in ``log_dir``. ``close()`` stops the processes,
deletes the vhost and drops the database; it is safe to call after a partial start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2

from shared.stack import ROOT, Stack
from tests.bus import create_vhost, delete_vhost
from tests.conftest import create_database, drop_database

# what every benchmark stack runs with (the caller may add more)
BENCH_ENV = {
    "PYTHONUNBUFFERED": "1",
    "TUANTIBU_MODE": "dev",
    # the gateway trusts one proxy: the join benchmark plays it, giving each joiner an
    # address of their own (X-Forwarded-For), so the per-address cap counts as it does
    # for people on their own phones (at the default cap, not one raised out of the way)
    "TRUSTED_PROXY_HOPS": "1",
    # a joiner may need more than one code
    "SMS_DAILY_CAP_PER_PHONE": "1000",
    "LEDGER_MEMBER_CAP": "100000000",
}
# settings a user may override from the environment (e.g. MAX_WORKERS=40 make bench)
OVERRIDABLE = {"LOG_LEVEL": "INFO", "HEALTHKIT_RETRIES": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle_server(database_url: str) -> None:
    """Write out what an earlier benchmark left in PostgreSQL's buffers (a checkpoint),
    so this one is not measured against the server flushing a million rows; best
    effort (it needs a superuser, as on a development machine)."""
    try:
        conn = psycopg2.connect(database_url)
    except psycopg2.Error:
        return
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    except psycopg2.Error:
        pass
    finally:
        conn.close()


class BenchStack:
    def __init__(self, log_dir: Path, extra_env: dict[str, str] | None = None, seed_count: int = 50) -> None:
        self.log_dir = log_dir
        self.extra_env = dict(extra_env or {})
        self.seed_count = seed_count
        self.database_url: str | None = None
        self.vhost: str | None = None
        self.stack: Stack | None = None
        self.env: dict[str, str] = {}

    @property
    def database_name(self) -> str | None:
        return self.database_url.rsplit("/", 1)[-1].split("?")[0] if self.database_url else None

    @property
    def gateway_url(self) -> str:
        return self.stack.gateway_url()

    @property
    def healthkit_url(self) -> str:
        return self.env["HEALTHKIT_URL"]

    @property
    def processes(self) -> dict:
        return self.stack.processes if self.stack else {}

    def start(self, ready_timeout: float = 90.0) -> "BenchStack":
        self.database_url = create_database()
        settle_server(self.database_url)
        # no firehose trace: it copies every message and would skew the figures
        self.vhost, amqp_uri = create_vhost(trace=False)
        sim_port, gateway_port = free_port(), free_port()
        env = dict(os.environ)
        for key, value in OVERRIDABLE.items():
            env.setdefault(key, value)
        env.update(BENCH_ENV)
        env.update(self.extra_env)
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "AMQP_URI": amqp_uri,
                "GATEWAY_ADDRESS": f"127.0.0.1:{gateway_port}",
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway_port}",
                "HEALTHKIT_SIM_ADDRESS": f"127.0.0.1:{sim_port}",
                "HEALTHKIT_URL": f"http://127.0.0.1:{sim_port}",
            }
        )
        self.env = env
        subprocess.run([sys.executable, "-m", "shared.migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
        subprocess.run(
            [sys.executable, "-m", "shared.healthkit", "seed", "--count", str(self.seed_count), "--if-empty"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )
        self.stack = Stack(env, log_dir=self.log_dir)
        self.stack.start()  # assigned first, so a failure part-way still stops what started
        self.stack.wait_ready(timeout=ready_timeout)
        return self

    def close(self) -> list[str]:
        """Stop everything; returns the problems met (cleanup goes on past each)."""
        problems = []
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        try:
            if self.stack is not None:
                try:
                    self.stack.stop()
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"stopping the processes: {exc!r}")
                self.stack = None
            if self.vhost is not None:
                try:
                    delete_vhost(self.vhost)
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"deleting vhost {self.vhost}: {exc!r}")
                self.vhost = None
            if self.database_url is not None:
                try:
                    drop_database(self.database_url)
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"dropping the database: {exc!r}")
                self.database_url = None
        finally:
            signal.signal(signal.SIGINT, previous)
        return problems

    def __enter__(self) -> "BenchStack":
        return self

    def __exit__(self, *exc) -> None:
        for problem in self.close():
            print(f"bench: cleanup problem: {problem}", file=sys.stderr)
