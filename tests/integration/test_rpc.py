"""RPC between services (shared.rpc), on the real bus: a caller waits at most its
timeout, and requests and replies travel without publisher confirms (a broker round
trip each that nobody needs: a lost request or reply ends as the caller's timeout).

Two small services run under ``nameko run`` in child processes, the way production runs
them: ``probe_echo`` answers, ``probe_caller`` calls it through ``shared.rpc.Rpc``. The
test process talks to ``probe_caller`` with pika, so every channel in the vhost belongs
to the two services."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import eventlet
import pika
import pytest

from shared.errors import Unavailable
from shared.rpc import Rpc, rpc
from tests.integration.support import ServiceProcess, fresh_bus, wait_for

CALL_TIMEOUT = 0.5


class EchoService:
    name = "probe_echo"

    @rpc
    def echo(self, value):
        return {"echo": value}

    @rpc
    def slow(self):
        eventlet.sleep(CALL_TIMEOUT * 6)
        return "late"


class CallerService:
    name = "probe_caller"
    echo_service = Rpc("probe_echo", timeout=CALL_TIMEOUT)

    @rpc
    def relay(self, value):
        return self.echo_service.echo(value)

    @rpc
    def relay_slow(self):
        started = time.monotonic()
        try:
            self.echo_service.slow()
        except Unavailable as exc:
            return {"unavailable": str(exc), "waited": time.monotonic() - started}
        return {"answered": True}


@pytest.fixture(scope="module")
def bus():
    with fresh_bus() as bus:
        yield bus


@pytest.fixture(scope="module")
def services(bus, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rpc-probe")
    processes = [
        ServiceProcess(f"tests.integration.test_rpc:{cls}", {"AMQP_URI": bus.uri, "max_workers": 4},
                       {"AMQP_URI": bus.uri}, workdir).start()
        for cls in ("EchoService", "CallerService")
    ]
    try:
        for process, queue in zip(processes, ("rpc-probe_echo", "rpc-probe_caller")):
            wait_for(lambda p=process, q=queue: p.check_alive() and (bus.queue_counts(q) or (0, 0))[1] >= 1,
                     timeout=20, what=f"{queue} to be consumed")
        yield processes
    finally:
        for process in processes:
            process.stop()


def call(bus, method: str, *args, timeout: float = 10.0):
    """Nameko's RPC wire format, spoken with pika (no confirms on this side either)."""
    with bus.channel() as ch:
        reply_queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(reply_queue, "nameko-rpc", routing_key=reply_queue)
        correlation_id = str(uuid.uuid4())
        ch.basic_publish(
            "nameko-rpc", f"probe_caller.{method}", json.dumps({"args": list(args), "kwargs": {}}),
            pika.BasicProperties(content_type="application/json", reply_to=reply_queue,
                                 correlation_id=correlation_id),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got, props, body = ch.basic_get(reply_queue, auto_ack=True)
            if got is not None and props.correlation_id == correlation_id:
                return json.loads(body)
            time.sleep(0.01)
    raise AssertionError(f"no reply to {method} in {timeout}s")


def channels_in_confirm_mode(vhost: str) -> list[str]:
    out = subprocess.run(["rabbitmqctl", "-q", "list_channels", "vhost", "name", "confirm"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert any(row[0] == vhost for row in rows), "the services' channels are not listed"
    return [row[1] for row in rows if row[0] == vhost and row[2].strip() == "true"]


def test_a_call_through_another_service_comes_back_without_any_publisher_confirms(bus, services):
    assert call(bus, "relay", "你好") == {"result": {"echo": "你好"}, "error": None}
    assert channels_in_confirm_mode(bus.vhost) == []


def test_a_caller_gives_up_after_its_timeout_with_unavailable(bus, services):
    answer = call(bus, "relay_slow")["result"]
    assert "did not answer in time" in answer["unavailable"]
    assert CALL_TIMEOUT <= answer["waited"] < CALL_TIMEOUT * 4
