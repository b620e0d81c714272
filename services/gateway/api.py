"""HTTP plumbing for the gateway: JSON in and out, errors through the one table,
and the session token from the ``Authorization: Bearer`` header."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable

from werkzeug.wrappers import Request, Response

from services.gateway.errors import status_for
from shared.config import settings
from shared.errors import InvalidInput, TuantibuError, Unauthenticated
from shared.logs import where

log = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(error: TuantibuError) -> Response:
    return json_response({"error": error.to_dict()}, status_for(error))


def body_of(request: Request) -> dict:
    """The JSON object in the request body; InvalidInput if it is not one."""
    # read the raw body whatever the Content-Type (curl -d sends a form type)
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The request body is not valid JSON.", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.", field="body")
    return body


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    return token.strip()


def client_of(request: Request, trusted_hops: int | None = None) -> str:
    """The address a request came from, as the SMS caps count it (at most 64 characters,
    as verify stores it).

    Behind ``TRUSTED_PROXY_HOPS`` reverse proxies, each appending the address it saw to
    ``X-Forwarded-For``, it is the address the outermost one saw (werkzeug's ProxyFix
    rule); fewer entries than proxies (a request that bypassed one) give the peer. With
    no trusted proxy the header is ignored: anyone can write it, and believing it would
    let one address spend as many codes as it likes."""
    hops = settings().trusted_proxy_hops if trusted_hops is None else trusted_hops
    if hops:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
        if len(forwarded) >= hops and forwarded[-hops]:
            return forwarded[-hops][:64]
    return (request.remote_addr or "")[:64]


def endpoint(fn: Callable) -> Callable:
    """Turn a handler's return value into JSON and every error into its status."""

    @functools.wraps(fn)
    def wrapper(self, request, *args, **kwargs):
        try:
            result = fn(self, request, *args, **kwargs)
        except TuantibuError as error:
            return error_response(error)
        except Exception as exc:  # noqa: BLE001 - the client gets a plain 500
            log.error("unexpected %s in %s at %s", type(exc).__name__, fn.__name__, where(exc))
            return json_response(
                {"error": {"code": "internal", "message": "Something went wrong on our side."}}, 500
            )
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple):
            body, status = result
            return json_response(body, status)
        return json_response(result)

    return wrapper
