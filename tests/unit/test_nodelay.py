"""Our HTTP servers answer a kept-alive client at once: with Nagle on, a response's body
waits for the ACK of its headers, which the client delays by 40 ms (this doubled the
ledger page's latency). The sockets that serve requests must have TCP_NODELAY."""

import socket
import threading

import requests

from services.gateway.tls import listening_socket
from shared.healthkit import simulator


def _nodelay(sock) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_connections_the_gateway_accepts_have_nagle_off():
    server = listening_socket(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    try:
        conn, _ = server.accept()
        assert _nodelay(conn)
        conn.close()
    finally:
        client.close()
        server.close()


def test_connections_the_health_kit_simulator_serves_have_nagle_off(monkeypatch):
    seen = []
    original = simulator.RedactingRequestHandler.log_request

    def log_request(self, *args, **kwargs):
        seen.append(_nodelay(self.connection))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(simulator.RedactingRequestHandler, "log_request", log_request)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = simulator.create_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert requests.get(f"http://127.0.0.1:{server.server_port}/", timeout=5).text == "ok"
        assert seen == [True]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
