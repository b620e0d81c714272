"""The Health Kit client reads the environment's proxy settings once, when it is made,
and goes through that proxy (or not, for a host NO_PROXY names)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shared.healthkit.client import HttpHealthKit


class _Proxy(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):
        _Proxy.seen.append(self.path)  # a proxy is asked for the absolute URL
        body = json.dumps({"changes": [], "next": 7}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    server = HTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Proxy.seen = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_proxy_in_the_environment_is_used(monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    kit = HttpHealthKit("http://healthkit.example.invalid", timeout=2, retries=0)
    try:
        assert kit.changes(0, limit=5) == ([], 7)
        assert _Proxy.seen == ["http://healthkit.example.invalid/changes?after=0&limit=5"]
    finally:
        kit.close()


def test_a_host_no_proxy_names_is_called_directly(monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    kit = HttpHealthKit(proxy, timeout=2, retries=0)  # the little server answers directly too
    try:
        assert kit.changes(0, limit=5) == ([], 7)
        assert _Proxy.seen == ["/changes?after=0&limit=5"]
    finally:
        kit.close()
