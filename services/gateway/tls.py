"""The gateway's web server, able to serve HTTPS itself given a certificate and key
(``GATEWAY_TLS_CERT`` / ``GATEWAY_TLS_KEY``), for deployments without a TLS proxy in
front, and answering a request no API endpoint takes (a method it does not accept) in
the API's error shape. ``http`` from here is Nameko's ``http`` entrypoint on that server."""

from __future__ import annotations

import socket

import eventlet
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from services.gateway.api import json_response
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


class GatewayApp(WsgiApp):
    """Nameko's WSGI app, except that under ``/api/`` a routing error is JSON like every
    other API error (werkzeug answers with an HTML page, which the pages and API clients
    cannot read)."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)  # as WsgiApp does (see there why)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            rv = provider.handle_request(request)
        except HTTPException as exc:
            rv = exc
            if request.path.startswith("/api/"):
                rv = json_response(
                    {"error": {"code": _ROUTING_CODES.get(exc.code, "bad_request"), "message": exc.description}},
                    exc.code or 400,
                    {"Allow": ", ".join(getattr(exc, "valid_methods", None) or [])} if exc.code == 405 else None,
                )
        return rv(environ, start_response)


_ROUTING_CODES = {404: "not_found", 405: "method_not_allowed"}


class GatewayServer(WebServer):
    def get_wsgi_app(self) -> WsgiApp:
        return GatewayApp(self)

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
