"""Operator's view of the dead-letter queue (``tuantibu.dead-letter``).

    python -m shared.deadletter list            # what is parked, why, for which handler
    python -m shared.deadletter replay [--limit N]   # back onto each handler's own queue

Replay publishes to the original handler's queue only (not to every subscriber of the
event), with publisher confirms, and removes the message from the dead-letter queue
only after the broker confirmed it.
"""

from __future__ import annotations

import argparse
import json
import sys

import pika

from shared.config import settings
from shared.handling import DEAD_LETTER_QUEUE


def _channel():
    connection = pika.BlockingConnection(pika.URLParameters(settings().amqp_uri))
    channel = connection.channel()
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    return connection, channel


def list_messages(limit: int = 100) -> list[dict]:
    connection, channel = _channel()
    found = []
    try:
        for _ in range(limit):
            method, props, body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=False)
            if method is None:
                break
            headers = props.headers or {}
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if not isinstance(payload, dict):  # parked because it was not an envelope
                payload = {}
            found.append(
                {
                    "event_id": payload.get("event_id"),
                    "event_type": payload.get("event_type"),
                    "queue": headers.get("x-original-queue"),
                    "error": headers.get("x-error"),
                    "attempts": headers.get("x-attempts"),
                }
            )
    finally:
        connection.close()  # unacked messages go back to the queue
    return found


def replay(limit: int = 100) -> int:
    connection, channel = _channel()
    # only what is parked now: a message that fails again is parked again behind them
    parked = channel.queue_declare(DEAD_LETTER_QUEUE, durable=True).method.message_count
    channel.confirm_delivery()
    replayed = 0
    try:
        for _ in range(min(limit, parked)):
            method, props, body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=False)
            if method is None:
                break
            queue = (props.headers or {}).get("x-original-queue")
            channel.basic_publish(
                "", queue, body,
                pika.BasicProperties(content_type="application/json", delivery_mode=2),
                mandatory=True,
            )
            channel.basic_ack(method.delivery_tag)
            replayed += 1
    finally:
        connection.close()
    return replayed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.deadletter")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    if args.command == "list":
        for item in list_messages(args.limit):
            print(json.dumps(item, ensure_ascii=False))
    else:
        print(f"replayed {replay(args.limit)} message(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
