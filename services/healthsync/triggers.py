"""Asking for a run with a message on RabbitMQ (for schedulers and tools outside the
system): publish ``{"ledger_id": null | id}`` to the ``healthsync.run-requests`` queue."""

from __future__ import annotations

import json

import pika

RUN_REQUESTS_QUEUE = "healthsync.run-requests"


def request_run_by_message(amqp_uri: str, ledger_id: str | None = None) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.queue_declare(RUN_REQUESTS_QUEUE, durable=True)
        channel.confirm_delivery()
        channel.basic_publish(
            "", RUN_REQUESTS_QUEUE, json.dumps({"ledger_id": ledger_id}).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2),
        )
    finally:
        connection.close()
