"""A RabbitMQ vhost per test run, and a capture of every message published in it.

Isolation: each run gets its own vhost (made with ``rabbitmqctl``), deleted afterwards.
Capture: RabbitMQ's firehose (``rabbitmqctl trace_on``) copies every message published
in the vhost to ``amq.rabbitmq.trace``; :class:`BusCapture` binds a queue there before
anything runs and reads the copies back, so a test can assert what went over the bus.
"""

from __future__ import annotations

import subprocess
import uuid
from urllib.parse import quote

import pika

RABBIT_HOST = "127.0.0.1"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(trace: bool = True) -> tuple[str, str]:
    """A fresh vhost; returns (name, amqp_uri)."""
    vhost = f"tuantibu-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    if trace:
        rabbitmqctl("trace_on", "-p", vhost)
    return vhost, f"amqp://guest:guest@{RABBIT_HOST}:5672/{quote(vhost, safe='')}"


def delete_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost)


class BusCapture:
    QUEUE = "test-capture"

    def __init__(self, vhost: str) -> None:
        # no heartbeats: this blocking connection sits idle between the tests that read
        # it, and the broker would drop it after two missed beats
        params = pika.ConnectionParameters(
            host=RABBIT_HOST, virtual_host=vhost, credentials=pika.PlainCredentials("guest", "guest"), heartbeat=0
        )
        self.connection = pika.BlockingConnection(params)
        self.channel = self.connection.channel()
        self.channel.queue_declare(self.QUEUE, durable=False, auto_delete=False)
        self.channel.queue_bind(self.QUEUE, "amq.rabbitmq.trace", routing_key="publish.#")

    def drain(self) -> list[bytes]:
        """Every message body published since the capture began (or last drained)."""
        bodies = []
        while True:
            method, _props, body = self.channel.basic_get(self.QUEUE, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()
