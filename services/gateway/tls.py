"""The gateway's web server, able to serve HTTPS itself given a certificate and key
(``GATEWAY_TLS_CERT`` / ``GATEWAY_TLS_KEY``), for deployments without a TLS proxy in
front. ``http`` from here is Nameko's ``http`` entrypoint on that server."""

from __future__ import annotations

import eventlet
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer

from shared.config import settings


class GatewayServer(WebServer):
    def start(self) -> None:
        if self._starting:
            return
        self._starting = True
        sock = eventlet.listen(self.bind_addr)
        sock.settimeout(None)  # as Nameko does (kombu issue 838)
        cfg = settings()
        if cfg.gateway_tls_cert:
            sock = eventlet.wrap_ssl(
                sock, certfile=cfg.gateway_tls_cert, keyfile=cfg.gateway_tls_key, server_side=True
            )
        self._sock = sock
        self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
        self._gt = self.container.spawn_managed_thread(self.run)


class GatewayHttp(HttpRequestHandler):
    server = GatewayServer()


http = GatewayHttp.decorator
