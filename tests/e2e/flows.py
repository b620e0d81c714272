"""The steps the end-to-end tests repeat: applying for a ledger, joining one, reading
the database the way an auditor would."""

from __future__ import annotations

import time

import psycopg2

from tests.e2e.api_client import ApiClient
from tests.people import Person, health_record, person


def application(p: Person, **overrides) -> dict:
    body = {
        "org_name": "朝阳区第一小学",
        "org_address": "北京市朝阳区幸福路1号",
        "admin_name": p.name,
        "admin_id_type": "resident_id",
        "admin_id_number": p.id_number,
        "admin_phone": p.phone,
    }
    body.update(overrides)
    return body


def join_form(p: Person, **overrides) -> dict:
    body = {"name": p.name, "id_type": "resident_id", "id_number": p.id_number, "phone": p.phone, "consent": True}
    body.update(overrides)
    return body


def sql(running, query: str, *args):
    conn = psycopg2.connect(running.env["DATABASE_URL"])
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def wait_until(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def known_person(api: ApiClient, name: str = "测试员", **health) -> Person:
    """A person the Health Kit knows (so they can pass verification)."""
    p = person(name)
    api.put_resident(p.id_number, **health_record(p, **health))
    return p


def create_active_ledger(api: ApiClient, p: Person, **overrides) -> tuple[str, str]:
    created = api.post("/api/ledgers", application(p, **overrides))
    assert created.status_code == 201, created.text
    body = created.json()
    code = api.latest_code(p.phone, after=api.sms_count(p.phone) - 1)
    confirmed = api.post(f"/api/challenges/{body['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["ledger_status"] == "active"
    return body["ledger_id"], confirmed.json()["token"]


def join_token(api: ApiClient, ledger_id: str, admin_token: str) -> str:
    return api.get(f"/api/ledgers/{ledger_id}/join-link", token=admin_token).json()["token"]


def join(api: ApiClient, token: str, p: Person) -> tuple[str, str]:
    """Join all the way; returns (membership_id, member session token)."""
    before = api.sms_count(p.phone)
    requested = api.post(f"/api/join/{token}", join_form(p))
    assert requested.status_code == 201, requested.text
    code = api.latest_code(p.phone, after=before)
    confirmed = api.post(f"/api/challenges/{requested.json()['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["membership_status"] == "active"
    return requested.json()["membership_id"], confirmed.json()["token"]
