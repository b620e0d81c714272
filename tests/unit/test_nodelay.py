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
    original = simulator.KeepAliveHandler.log_request

    def log_request(self, *args, **kwargs):
        seen.append(_nodelay(self.connection))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(simulator.KeepAliveHandler, "log_request", log_request)

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


def test_a_kept_alive_client_calls_the_health_kit_simulator_over_one_connection(monkeypatch):
    # werkzeug's server closed every connection: each Health Kit call cost a new TCP
    # connection and a new server thread
    connections = []
    original = simulator.KeepAliveHandler.setup

    def setup(self):
        connections.append(self.client_address)
        return original(self)

    monkeypatch.setattr(simulator.KeepAliveHandler, "setup", setup)

    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["REQUEST_METHOD"].encode(), b" ", environ["PATH_INFO"].encode("latin-1"), b" ", body]

    server = simulator.create_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with requests.Session() as http:
            assert http.post(url + "/status/bulk", data=b'{"id_numbers": []}', timeout=5).text == (
                'POST /status/bulk {"id_numbers": []}'
            )
            for i in range(4):  # the body above was read in full: the next request starts clean
                answer = http.get(f"{url}/residents/{i}?x=1", timeout=5)
                assert answer.text == f"GET /residents/{i} " and answer.headers.get("Connection") != "close"
        assert len(connections) == 1
        # a body too large to read is refused, and that connection ends
        with socket.create_connection(("127.0.0.1", server.server_port)) as raw:
            raw.sendall(b"POST /status/bulk HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
            raw.settimeout(5)
            reply = b""
            while chunk := raw.recv(65536):
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 413")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
