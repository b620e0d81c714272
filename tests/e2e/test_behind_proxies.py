"""A gateway behind reverse proxies (TRUSTED_PROXY_HOPS): the SMS caps count each
joiner's own address, not the proxy's, so one proxy does not spend everyone's cap."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import free_port
from tests.e2e.flows import create_active_ledger, join_form, join_token, known_person, sql, wait_until

FORWARDED = {"X-Forwarded-For": "192.0.2.1, 203.0.113.77"}  # what a client wrote, then what the proxy saw


def sends_from(running, client: str) -> int:
    return sql(running, "SELECT count(*) FROM verify.sms_sends WHERE client = %s", client)[0][0]


@pytest.fixture
def proxied(running):
    """A second gateway that trusts one proxy in front of it."""
    port = free_port()
    running.stack.start_service(
        "gateway", name="gateway-proxied", GATEWAY_ADDRESS=f"127.0.0.1:{port}", TRUSTED_PROXY_HOPS="1"
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            health = requests.get(f"{url}/api/health", timeout=5)
            return health.status_code == 200 and health.json().get("ok")
        except requests.RequestException:
            return False

    try:
        wait_until(ready, timeout=30, what="the proxied gateway")
        yield url
    finally:
        running.stack.stop("gateway-proxied")


def test_behind_a_trusted_proxy_a_join_counts_against_the_address_the_proxy_saw(api, running, proxied):
    admin = known_person(api, "吴老师")
    ledger_id, admin_token = create_active_ledger(api, admin)
    token = join_token(api, ledger_id, admin_token)
    joiner = known_person(api, "郑小红")

    answer = requests.post(f"{proxied}/api/join/{token}", json=join_form(joiner), headers=FORWARDED, timeout=30)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "code_sent"
    challenge = answer.json()["challenge_id"]
    assert sql(running, "SELECT client FROM verify.challenges WHERE id = %s", challenge) == [("203.0.113.77",)]
    assert sends_from(running, "203.0.113.77") == 1
    assert sends_from(running, "192.0.2.1") == 0  # what the client wrote itself does not count


def test_a_gateway_that_trusts_no_proxy_ignores_the_header(api, running):
    # the session's gateway (TRUSTED_PROXY_HOPS unset): a client cannot pick its address
    forwarded = {"X-Forwarded-For": "198.51.100.23"}
    answer = requests.post(f"{api.base_url}/api/login", json={"phone": "13900139023"}, headers=forwarded, timeout=30)
    assert answer.status_code == 201, answer.text
    challenge = answer.json()["challenge_id"]
    assert sql(running, "SELECT client FROM verify.challenges WHERE id = %s", challenge) == [("127.0.0.1",)]
    assert sends_from(running, "198.51.100.23") == 0
