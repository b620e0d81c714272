"""Helpers for the integration tests of the reliability machinery (outbox, relay,
handling, dead letters).

Every module gets its own RabbitMQ vhost and its own migrated database. A Nameko
service runs the way production runs it: ``python -m nameko run`` in a child process,
which applies eventlet's monkey-patch to itself. Nameko 2.14's pytest plugin no longer
patches the test process (it only warns), and a container in an unpatched process
would block its hub on every socket and psycopg2 call, so the test process stays
plain Python and talks to the service over the real broker and database only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pika
from pika.exceptions import ChannelClosedByBroker
from sqlalchemy import Engine, create_engine

from shared.migrate import upgrade_all
from tests.bus import create_vhost, delete_vhost
from tests.conftest import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Message:
    body: Any
    properties: pika.BasicProperties
    redelivered: bool = False

    @property
    def headers(self) -> dict:
        return self.properties.headers or {}


@dataclass
class Bus:
    """A vhost of its own and a few blocking probes into it (pika, no eventlet)."""

    vhost: str
    uri: str

    @contextlib.contextmanager
    def channel(self) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
        connection = pika.BlockingConnection(pika.URLParameters(self.uri))
        try:
            yield connection.channel()
        finally:
            if connection.is_open:
                connection.close()

    def queue_counts(self, queue: str) -> tuple[int, int] | None:
        """(ready messages, consumers) of ``queue``, or None if it does not exist."""
        with self.channel() as ch:
            try:
                ok = ch.queue_declare(queue, passive=True)
            except ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return None
                raise
            return ok.method.message_count, ok.method.consumer_count

    def purge(self, queue: str) -> None:
        with self.channel() as ch:
            ch.queue_purge(queue)

    def drain(self, queue: str) -> list[Message]:
        """Take (and ack) every ready message of ``queue``, in queue order."""
        taken = []
        with self.channel() as ch:
            while True:
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return taken
                taken.append(Message(json.loads(body), props, method.redelivered))

    def next_message(self, queue: str, timeout: float) -> tuple[Message, float] | None:
        """Wait for one message; returns it with the monotonic time it was taken."""
        deadline = time.monotonic() + timeout
        with self.channel() as ch:
            while time.monotonic() < deadline:
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is not None:
                    return Message(json.loads(body), props, method.redelivered), time.monotonic()
                time.sleep(0.002)
        return None

    def publish(self, exchange: str, routing_key: str, body: Any, copies: int = 1) -> None:
        """Publish a JSON body as Nameko's event dispatcher would (persistent, confirmed),
        ``copies`` times back to back."""
        with self.channel() as ch:
            ch.confirm_delivery()
            for _ in range(copies):
                ch.basic_publish(
                    exchange,
                    routing_key,
                    json.dumps(body).encode(),
                    pika.BasicProperties(content_type="application/json", delivery_mode=2),
                    mandatory=True,
                )


@contextlib.contextmanager
def fresh_bus() -> Iterator[Bus]:
    vhost, uri = create_vhost(trace=False)
    try:
        yield Bus(vhost, uri)
    finally:
        delete_vhost(vhost)


@contextlib.contextmanager
def migrated_database() -> Iterator[str]:
    url = create_database()
    try:
        upgrade_all(url)
        yield url
    finally:
        drop_database(url)


@contextlib.contextmanager
def migrated_engine() -> Iterator[Engine]:
    """An engine over a fresh database with every service's migrations (dropped after)."""
    with migrated_database() as url:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class ServiceProcess:
    """``python -m nameko run <target>`` with a config of our own, logging to a file."""

    def __init__(self, target: str, config: dict, env: dict[str, str], workdir: Path) -> None:
        self.target = target
        self.config = {
            **config,
            "LOGGING": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
                "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
                "root": {"level": "INFO", "handlers": ["console"]},
            },
        }
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        name = target.rsplit(":", 1)[-1]
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        # JSON is YAML; nameko run reads it like config.yaml.
        self.config_path.write_text(json.dumps(self.config))
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", str(self.config_path), self.target],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def check_alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"{self.target} exited:\n{self.log()}")
        return True

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
