"""The join flow's floor (``make bench``'s ``floor``): its skeleton makes every hop of a
real join on the real RabbitMQ, so a skeleton join completes only if each hop arrives."""

from __future__ import annotations

import threading

from bench.floor import FloorStack, floor_scenario
from bench.load import Client, run_phase


def test_a_skeleton_join_goes_through_every_hop(tmp_path):
    stack = FloorStack(tmp_path / "logs").start()
    try:
        rec = run_phase(2, 1.5, 0.2, floor_scenario(), stack.gateway_url, threading.Event())
        # POST join answers 201 only after verify's challenge_sent reached the gateway
        # (its HTTP call to the Health Kit stand-in made), confirm says active only after
        # member's joined did; anything missing is a 202 or 'activating', counted an error
        assert rec.completed > 0 and not rec.errors, dict(rec.errors)
        for step in ("join_info", "join_request", "sms_code", "confirm"):
            assert rec.latencies[step]
        client = Client(stack.gateway_url)
        assert client.get("/api/ping").json() == {"pong": True}
        client.close()
    finally:
        assert stack.close() == []
