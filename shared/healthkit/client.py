"""HTTP implementation of the :class:`~shared.healthkit.HealthKit` interface.

Every call carries a timeout; connection errors, timeouts, HTTP 5xx and unreadable
answers are retried with exponential backoff (``backoff``, ×2 each time: 0.1, 0.2,
0.4 s by default), then :class:`~shared.healthkit.HealthKitUnavailable` is raised. A
4xx answer means the request itself is wrong and raises ``ValueError`` at once.

Nothing here logs or raises with an ID number, a phone or a name: logs and messages
name the route template (``POST /status/bulk``), the attempt and the failure kind.

:class:`SimulatorAdmin` drives the simulator's extra endpoints (set a resident's
health, switches); it is for demos and tests, not part of the interface.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

import certifi
import requests
import urllib3
from requests.utils import select_proxy
from urllib3.exceptions import NewConnectionError

from . import MAX_BULK, Change, HealthKitUnavailable, HealthRecord, IdentityMatch

log = logging.getLogger("shared.healthkit.client")

_RETRYABLE_STATUS = frozenset(range(500, 600))
_ACCEPT = {"Accept": "application/json"}
_SEND_JSON = {"Accept": "application/json", "Content-Type": "application/json"}


class _Transport:
    """urllib3 with kept-alive connections, timeouts, retries and PII-free errors.

    Not requests: over the same pool it cost about twice the client CPU per call (1.1
    against 0.7 ms here), and verify and healthsync call the Health Kit on every join.
    The environment's proxy and CA settings (HTTP(S)_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE...) are read once, when the client is made, as requests reads
    them."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 3.0,
        retries: int = 3,
        backoff: float = 0.1,
        pool_size: int = 32,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be zero or more")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        with requests.Session() as probe:  # only to read the environment the way requests does
            env = probe.merge_environment_settings(self.base_url, {}, None, None, None)
        proxy = select_proxy(self.base_url, env["proxies"])
        tls: dict[str, Any] = {}
        if self.base_url.startswith("https:"):
            verify, cert = env["verify"], env["cert"]
            tls = {"cert_reqs": "CERT_NONE"} if verify is False else {
                "cert_reqs": "CERT_REQUIRED", "ca_certs": verify if isinstance(verify, str) else certifi.where(),
            }
            if cert:
                tls["cert_file"], tls["key_file"] = (cert, None) if isinstance(cert, str) else cert
        options = {"num_pools": 1, "maxsize": pool_size, "retries": False, **tls}
        self._pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        route: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        allow_404: bool = False,
    ) -> Any:
        """Call ``path`` and return the decoded JSON body (``None`` for an allowed 404).

        ``route`` is the path template used in logs and errors; ``path`` may hold an
        ID number and is never logged.
        """
        url = self.base_url + path + ("?" + urlencode(params) if params else "")
        body, headers = None, _ACCEPT
        if json is not None:
            body, headers = jsonlib.dumps(json).encode(), _SEND_JSON
        attempts = self.retries + 1
        last = "no attempt"
        for attempt in range(1, attempts + 1):
            try:
                response = self._pool.request(
                    method, url, body=body, headers=headers, timeout=self._timeout, redirect=False
                )
            except NewConnectionError:  # (a kind of connect timeout to urllib3)
                last = "connection error"
            except urllib3.exceptions.TimeoutError:
                last = "timeout"
            except (urllib3.exceptions.HTTPError, OSError):
                last = "connection error"
            else:
                status = response.status
                if status in _RETRYABLE_STATUS:
                    last = f"HTTP {status}"
                elif status == 404 and allow_404:
                    return None
                elif status >= 400:
                    raise ValueError(self._rejection(route, status, response.data))
                else:
                    try:
                        return jsonlib.loads(response.data)
                    except ValueError:
                        last = "unreadable answer"
            if attempt < attempts:
                delay = self.backoff * (2 ** (attempt - 1))
                log.warning(
                    "Health Kit %s failed (%s), attempt %d/%d; retrying in %.2fs",
                    route, last, attempt, attempts, delay,
                )
                time.sleep(delay)
        log.error("Health Kit %s failed (%s) after %d attempts", route, last, attempts)
        raise HealthKitUnavailable(
            f"The Health Kit did not answer {route} ({last}) after {attempts} attempts; "
            "try again later.",
            details={"route": route, "attempts": attempts, "last_failure": last},
        )

    @staticmethod
    def _rejection(route: str, status: int, data: bytes) -> str:
        """A ValueError message for a 4xx answer: route, status, error code and field
        name only (the server's free text is not repeated; it could echo input)."""
        parts = [f"HTTP {status}"]
        try:
            body = jsonlib.loads(data)
        except ValueError:
            body = None
        if isinstance(body, dict):
            if isinstance(body.get("error"), str):
                parts.append(f"error {body['error']}")
            if isinstance(body.get("field"), str):
                parts.append(f"field {body['field']}")
        return f"The Health Kit rejected {route}: " + ", ".join(parts)


def _check_ids(id_numbers: Sequence[str]) -> list[str]:
    if isinstance(id_numbers, (str, bytes)):
        raise TypeError("id_numbers must be a sequence of strings, not one string")
    ids = list(id_numbers)
    if len(ids) > MAX_BULK:
        raise ValueError(f"at most {MAX_BULK} ID numbers per bulk_status call, got {len(ids)}")
    for value in ids:
        if not isinstance(value, str) or not value:
            raise ValueError("every ID number must be a non-empty string")
    return ids


class HttpHealthKit(_Transport):
    """The Health Kit over HTTP/JSON (the simulator, or a compatible real endpoint)."""

    def match_identity(
        self, name: str, id_type: str, id_number: str, phone: str
    ) -> IdentityMatch:
        body = self._request(
            "POST",
            "/identity/match",
            "POST /identity/match",
            json={"name": name, "id_type": id_type, "id_number": id_number, "phone": phone},
        )
        try:
            return IdentityMatch(body["result"])
        except (KeyError, TypeError, ValueError):
            raise HealthKitUnavailable(
                "The Health Kit gave an unexpected answer to POST /identity/match.",
                details={"route": "POST /identity/match"},
            ) from None

    def bulk_status(self, id_numbers: Sequence[str]) -> dict[str, HealthRecord]:
        ids = _check_ids(id_numbers)
        if not ids:
            return {}
        body = self._request(
            "POST", "/status/bulk", "POST /status/bulk", json={"id_numbers": ids}
        )
        try:
            records = [HealthRecord.from_dict(item) for item in body["records"]]
        except (KeyError, TypeError, ValueError) as exc:
            # ValueError texts from from_dict name fields only, never values.
            reason = str(exc) if isinstance(exc, ValueError) else "malformed body"
            raise HealthKitUnavailable(
                f"The Health Kit gave an unexpected answer to POST /status/bulk ({reason}).",
                details={"route": "POST /status/bulk"},
            ) from None
        wanted = set(ids)
        return {r.id_number: r for r in records if r.id_number in wanted}

    def changes(self, after: int, limit: int = 1000) -> tuple[list[Change], int]:
        after = int(after)
        limit = int(limit)
        if after < 0:
            raise ValueError("after must be zero or more")
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        body = self._request(
            "GET", "/changes", "GET /changes", params={"after": after, "limit": limit}
        )
        try:
            changes = [Change.from_dict(item) for item in body["changes"]]
            cursor = int(body["next"])
        except (KeyError, TypeError, ValueError):
            raise HealthKitUnavailable(
                "The Health Kit gave an unexpected answer to GET /changes.",
                details={"route": "GET /changes"},
            ) from None
        return changes, cursor


class SimulatorAdmin(_Transport):
    """The simulator's own endpoints, for demos and tests (the real Health Kit has none
    of these): set or read one resident, flip the latency / failure switches."""

    def put_resident(self, id_number: str, **fields: Any) -> dict[str, Any]:
        """Create or update a resident; ``fields`` as in ``PUT /residents/{id}``
        (datetimes may be passed as such). Returns the stored resident."""
        payload = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in fields.items()}
        return self._request(
            "PUT",
            "/residents/" + quote(id_number, safe=""),
            "PUT /residents/{id}",
            json=payload,
        )

    def get_resident(self, id_number: str) -> dict[str, Any] | None:
        return self._request(
            "GET",
            "/residents/" + quote(id_number, safe=""),
            "GET /residents/{id}",
            allow_404=True,
        )

    def switches(self) -> dict[str, Any]:
        return self._request("GET", "/switches", "GET /switches")

    def set_switches(
        self, latency_ms: int | None = None, failure_rate: float | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if latency_ms is not None:
            payload["latency_ms"] = latency_ms
        if failure_rate is not None:
            payload["failure_rate"] = failure_rate
        return self._request("PUT", "/switches", "PUT /switches", json=payload)

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health", "GET /health")
