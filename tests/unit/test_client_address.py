"""The client address the SMS caps count: the peer, or behind trusted reverse proxies
the address the outermost of them saw (``TRUSTED_PROXY_HOPS``)."""

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway.api import client_of
from shared.config import ConfigError, load_settings


def request(forwarded: str | None = None, peer: str = "10.0.0.5") -> Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return Request(EnvironBuilder(path="/api/login", headers=headers, environ_base={"REMOTE_ADDR": peer}).get_environ())


def test_without_trusted_proxies_the_header_is_ignored():
    # anyone can send X-Forwarded-For: believing it would let one address dodge its cap
    assert client_of(request("203.0.113.9"), trusted_hops=0) == "10.0.0.5"


def test_one_trusted_proxy_gives_the_address_it_saw():
    # what a client wrote in the header itself (the first entries) does not count
    assert client_of(request("1.2.3.4, 203.0.113.9"), trusted_hops=1) == "203.0.113.9"


def test_two_trusted_proxies_give_the_address_the_outer_one_saw():
    assert client_of(request("1.2.3.4, 203.0.113.9, 198.51.100.7"), trusted_hops=2) == "203.0.113.9"


@pytest.mark.parametrize("forwarded", [None, "", "203.0.113.9"])
def test_fewer_forwarded_addresses_than_proxies_gives_the_peer(forwarded):
    # the request bypassed a proxy: only the peer is known for sure
    assert client_of(request(forwarded), trusted_hops=2) == "10.0.0.5"


def test_the_address_is_cut_to_what_verify_stores():
    assert client_of(request("x" * 100), trusted_hops=1) == "x" * 64


def test_trusted_proxy_hops_default_to_none_and_must_be_a_count():
    assert load_settings({}).trusted_proxy_hops == 0
    assert load_settings({"TRUSTED_PROXY_HOPS": "2"}).trusted_proxy_hops == 2
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        load_settings({"TRUSTED_PROXY_HOPS": "-1"})
