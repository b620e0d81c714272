"""Start the whole system: what ``make run`` does, and what the end-to-end tests use.

``python -m shared.stack`` checks that PostgreSQL and RabbitMQ answer (and says how to
start them if not), creates the database if missing, applies every service's migrations,
seeds the Health Kit simulator with demo residents when it is empty, starts the
simulator, every service and the gateway as child processes, waits until the gateway
answers, prints where to go, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import psycopg2
import requests
from kombu import Connection
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("org", "verify", "member", "healthsync", "gateway")


class DependencyDown(RuntimeError):
    """PostgreSQL or RabbitMQ cannot be reached; the message says how to fix it."""


def check_postgres(database_url: str) -> None:
    admin = make_url(database_url).set(database="postgres")
    try:
        conn = psycopg2.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False), connect_timeout=3)
        conn.close()
    except psycopg2.OperationalError:
        raise DependencyDown(
            f"PostgreSQL did not answer at {make_url(database_url).render_as_string(hide_password=True)} "
            "(DATABASE_URL). Start it, for example with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or `docker compose up -d postgres`, or point DATABASE_URL at a running server."
        ) from None


def check_rabbitmq(amqp_uri: str) -> None:
    try:
        with Connection(amqp_uri, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        shown = amqp_uri.split("@")[-1]
        raise DependencyDown(
            f"RabbitMQ did not answer at amqp://{shown} (AMQP_URI). Start it, for example "
            "with `rabbitmq-server -detached` or `docker compose up -d rabbitmq`, or point "
            "AMQP_URI at a running broker."
        ) from None


def ensure_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = url.set(database="postgres", drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{url.database}"')
    conn.close()


def prepare(env: dict[str, str], seed_count: int) -> None:
    """Migrations and simulator seed, in a child process so ``env`` applies."""
    subprocess.run([sys.executable, "-m", "shared.migrate"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [sys.executable, "-m", "shared.healthkit", "seed", "--count", str(seed_count), "--if-empty"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )


class Stack:
    """The running processes; ``stop()`` ends them all."""

    def __init__(self, env: dict[str, str], log_dir: Path | None = None) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list[IO] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``args`` as process ``name`` (its output in ``log_dir/name.log``)."""
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")
            self._logs.append(out)
        # a process group of its own: a signal for the whole group of ``make run`` (Ctrl-C,
        # or SIGTERM from timeout or a service manager) reaches only this launcher, which
        # stops each process once. Signalled twice (by the group, then by us) a Nameko
        # service failed to stop and hung.
        self.processes[name] = subprocess.Popen(
            args, cwd=ROOT, env=env or self.env, stdout=out, stderr=subprocess.STDOUT if out else None,
            process_group=0,
        )

    def start(self, services: tuple[str, ...] = SERVICES, simulator: bool = True) -> "Stack":
        if simulator:
            self.spawn("healthkit-sim", [sys.executable, "-m", "shared.healthkit", "serve"])
        for service in services:
            self.start_service(service)
        return self

    def start_service(self, service: str, name: str | None = None, **env_overrides: str) -> None:
        """Start one service process (``name`` tells a second instance apart)."""
        if service == "gateway":
            # gateway workers mostly wait (for replies, for events that end a wait), and
            # the broadcast events that wake them need free workers of the same pool
            env_overrides.setdefault("MAX_WORKERS", self.env.get("GATEWAY_MAX_WORKERS", "200"))
        self.spawn(
            name or service,
            [sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "config.yaml"), f"services.{service}.service"],
            {**self.env, **env_overrides},
        )

    def kill(self, name: str) -> None:
        """kill -9: no goodbye, no acks, no cleanup."""
        proc = self.processes.pop(name)
        proc.kill()
        proc.wait()

    def _log_tail(self, name: str) -> str:
        if self.log_dir is None:
            return ""
        lines = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()
        return ":\n" + "\n".join(lines[-15:])

    def gateway_url(self) -> str:
        return "http://" + self.env.get("GATEWAY_ADDRESS", "127.0.0.1:8000")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        url = self.gateway_url() + "/api/health"
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode} while starting{self._log_tail(name)}")
            try:
                response = requests.get(url, timeout=2)
                if response.status_code == 200 and response.json().get("ok"):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the gateway did not become ready at {url} within {timeout:.0f}s")

    def stop(self, name: str | None = None, sig: int = signal.SIGTERM) -> None:
        names = [name] if name else list(self.processes)
        for n in names:
            proc = self.processes.get(n)
            if proc and proc.poll() is None:
                proc.send_signal(sig)
        for n in names:
            proc = self.processes.get(n)
            if proc is None:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if name:
                del self.processes[n]
        if name is None:
            for f in self._logs:
                f.close()


def main() -> int:
    from shared.config import ConfigError, load_settings
    from shared.healthkit.seed import DEMO_RESIDENTS

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        cfg = load_settings(env)
        check_postgres(cfg.database_url)
        check_rabbitmq(cfg.amqp_uri)
    except (DependencyDown, ConfigError) as problem:
        print(f"\nCannot start Tuantibu: {problem}\n", file=sys.stderr)
        return 1
    ensure_database(cfg.database_url)
    prepare(env, cfg.demo_residents)
    stack = Stack(env).start()

    def shutdown(*_):
        print("\nStopping every Tuantibu process...", flush=True)
        stack.stop()
        sys.exit(0)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        stack.wait_ready()
    except RuntimeError as problem:
        print(f"\nTuantibu did not start: {problem}\n", file=sys.stderr)
        stack.stop()
        return 1
    demo = DEMO_RESIDENTS[0]
    print(
        "\n"
        f"Tuantibu is running: gateway {cfg.public_base_url} · Health Kit simulator {cfg.healthkit_url}\n"
        f"Open {cfg.public_base_url}/create in a (phone) browser to create a ledger; API walk-through in README.md\n"
        f"Demo resident to try: {demo.name}, resident ID {demo.id_number}, phone {demo.phone}\n"
        f"SMS codes: {cfg.public_base_url}/api/dev/sms?phone={demo.phone}  "
        f"or `.venv/bin/python -m shared.sms --phone {demo.phone}`\n"
        "Press Ctrl-C to stop everything.\n",
        flush=True,
    )
    while True:
        for name, proc in list(stack.processes.items()):
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; stopping everything.", file=sys.stderr)
                stack.stop()
                return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
