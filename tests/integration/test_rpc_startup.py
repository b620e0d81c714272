"""A service that serves HTTP and calls others over RPC (the gateway) answers its very
first requests: its RPC reply queue exists before its HTTP server listens, so a reply
to a call made in the first moments is kept for it, not dropped by the broker as
unroutable (the caller would wait out its timeout)."""

from __future__ import annotations

import time

import pytest
import requests
from nameko.web.handlers import http

from shared.rpc import Rpc
from tests.conftest import free_port
from tests.integration.support import ServiceProcess, fresh_bus, wait_for

CALL_TIMEOUT = 3.0


class FrontService:
    name = "startup_front"
    echo_service = Rpc("probe_echo", timeout=CALL_TIMEOUT)  # tests.integration.test_rpc's

    @http("GET", "/echo")
    def echo(self, request):
        return self.echo_service.echo("hi")["echo"]


@pytest.fixture(scope="module")
def bus():
    with fresh_bus() as bus:
        yield bus


def test_the_first_requests_after_start_are_answered_at_once(bus, tmp_path):
    echo = ServiceProcess("tests.integration.test_rpc:EchoService", {"AMQP_URI": bus.uri},
                          {"AMQP_URI": bus.uri}, tmp_path).start()
    try:
        wait_for(lambda: echo.check_alive() and (bus.queue_counts("rpc-probe_echo") or (0, 0))[1] >= 1,
                 timeout=20, what="the echo service")
        for attempt in range(5):
            port = free_port()
            front = ServiceProcess("tests.integration.test_rpc_startup:FrontService",
                                   {"AMQP_URI": bus.uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"},
                                   {"AMQP_URI": bus.uri}, tmp_path).start()
            try:
                # the first request the server accepts, sent as soon as it listens
                while True:
                    front.check_alive()
                    try:
                        started = time.monotonic()
                        response = requests.get(f"http://127.0.0.1:{port}/echo", timeout=CALL_TIMEOUT * 2)
                        break
                    except requests.ConnectionError:
                        time.sleep(0.002)
                took = time.monotonic() - started
                assert response.status_code == 200 and response.text == "hi", (attempt, response.text)
                assert took < CALL_TIMEOUT / 2, f"attempt {attempt}: the first request took {took:.2f}s"
            finally:
                front.stop()
    finally:
        echo.stop()
