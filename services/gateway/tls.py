"""The gateway's web server, able to serve HTTPS itself given a certificate and key
(``GATEWAY_TLS_CERT`` / ``GATEWAY_TLS_KEY``), for deployments without a TLS proxy in
front. ``http`` from here is Nameko's ``http`` entrypoint on that server."""

from __future__ import annotations

import socket

import eventlet
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer

from shared.config import settings


def listening_socket(bind_addr, cert: str = "", key: str = ""):
    """The gateway's listening socket. Connections accepted from it inherit
    TCP_NODELAY: a response's headers and body leave at once, instead of the body
    waiting (Nagle) for the ACK a kept-alive client delays by 40 ms."""
    sock = eventlet.listen(bind_addr)
    sock.settimeout(None)  # as Nameko does (kombu issue 838)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if cert:
        sock = eventlet.wrap_ssl(sock, certfile=cert, keyfile=key, server_side=True)
    return sock


class GatewayServer(WebServer):
    def start(self) -> None:
        if self._starting:
            return
        self._starting = True
        cfg = settings()
        self._sock = listening_socket(self.bind_addr, cfg.gateway_tls_cert, cfg.gateway_tls_key)
        self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
        self._gt = self.container.spawn_managed_thread(self.run)


class GatewayHttp(HttpRequestHandler):
    server = GatewayServer()


http = GatewayHttp.decorator
