"""A small client for the gateway's HTTP API (and the Health Kit simulator), used by
the end-to-end tests the way a phone's browser or a script would use them."""

from __future__ import annotations

import time
from typing import Any

import requests


class ApiClient:
    def __init__(self, base_url: str, healthkit_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.healthkit_url = healthkit_url.rstrip("/")
        self.http = requests.Session()
        self.token: str | None = None

    def _headers(self, token: str | None) -> dict:
        token = token or self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return self.http.get(self.base_url + path, headers=self._headers(token), timeout=30, **kw)

    def post(self, path: str, json: Any = None, token: str | None = None, **kw: Any) -> requests.Response:
        return self.http.post(self.base_url + path, json=json, headers=self._headers(token), timeout=30, **kw)

    # -- the Health Kit simulator (an external system; tests set people's records) ----

    def put_resident(self, id_number: str, **record: Any) -> dict:
        response = self.http.put(f"{self.healthkit_url}/residents/{id_number}", json=record, timeout=10)
        response.raise_for_status()
        return response.json()

    # -- flows ------------------------------------------------------------------

    def latest_code(self, phone: str, after: int = 0) -> str:
        """The newest code the dev SMS outbox holds for ``phone``; waits for a new one."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            items = self.get("/api/dev/sms", params={"phone": phone}).json()["items"]
            if len(items) > after:
                text = items[0]["text"]
                digits = "".join(ch if ch.isdigit() else " " for ch in text).split()
                return next(d for d in digits if len(d) == 6)
            time.sleep(0.1)
        raise AssertionError("no SMS arrived")

    def sms_count(self, phone: str) -> int:
        return len(self.get("/api/dev/sms", params={"phone": phone}).json()["items"])

    def wait_challenge(self, challenge_id: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(f"/api/challenges/{challenge_id}").json()
            if body.get("status") not in (None, "pending"):
                return body
            time.sleep(0.1)
        raise AssertionError("challenge stayed pending")
