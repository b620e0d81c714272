"""The gateway's readiness check (``GET /api/health``) is ready only when every service
answers and reaches its database; otherwise it is 503 and says which service and why.
A service that answers RPCs but cannot reach PostgreSQL would fail every request."""

from __future__ import annotations

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import free_port
from tests.integration.support import ServiceProcess, fresh_bus, migrated_database, wait_for

# a PostgreSQL nobody listens on: connections are refused at once
NO_DATABASE = "postgresql://postgres@127.0.0.1:9/tuantibu"


@pytest.fixture(scope="module")
def bus():
    with fresh_bus() as bus:
        yield bus


@pytest.fixture(scope="module")
def database_url():
    with migrated_database() as url:
        yield url


def org(bus, database_url: str, workdir) -> ServiceProcess:
    service = ServiceProcess(
        "services.org.service:OrgService", {"AMQP_URI": bus.uri, "DATABASE_URL": database_url},
        {"AMQP_URI": bus.uri, "DATABASE_URL": database_url}, workdir,
    ).start()
    wait_for(lambda: service.check_alive() and (bus.queue_counts("rpc-org") or (0, 0))[1] >= 1,
             timeout=30, what="the org service")
    return service


def test_a_service_that_cannot_reach_its_database_is_not_ready(bus, database_url, tmp_path):
    (tmp_path / "down").mkdir()
    (tmp_path / "up").mkdir()
    down = org(bus, NO_DATABASE, tmp_path / "down")
    try:
        with ClusterRpcProxy({"AMQP_URI": bus.uri}) as cluster:
            assert cluster.org.health() == {
                "service": "org", "ok": False, "problem": "its database is unreachable (OperationalError)",
            }
        port = free_port()
        gateway = ServiceProcess(
            "services.gateway.service:GatewayService",
            {"AMQP_URI": bus.uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "DATABASE_URL": database_url},
            {"AMQP_URI": bus.uri, "DATABASE_URL": database_url}, tmp_path,
        ).start()
        try:
            def answered():
                gateway.check_alive()
                try:  # (a list: a 503 response is falsy)
                    return [requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10)]
                except requests.ConnectionError:
                    return None

            [response] = wait_for(answered, timeout=30, what="the gateway")
            assert response.status_code == 503
            body = response.json()
            assert body["ok"] is False and body["services"]["org"] is False
            assert body["problems"]["org"] == "its database is unreachable (OperationalError)"
            # the others are not running here at all
            assert body["problems"]["verify"].startswith("did not answer within 2 s")
        finally:
            gateway.stop()
    finally:
        down.stop()
    up = org(bus, database_url, tmp_path / "up")
    try:
        with ClusterRpcProxy({"AMQP_URI": bus.uri}) as cluster:
            assert cluster.org.health() == {"service": "org", "ok": True}
    finally:
        up.stop()
    assert "Traceback" not in (tmp_path / "up" / "OrgService.log").read_text()
