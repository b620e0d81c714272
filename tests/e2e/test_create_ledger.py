"""机构建 end to end: through the real gateway over HTTP, with every service running on
the real RabbitMQ and PostgreSQL, and the Health Kit simulator as the outside world."""

from __future__ import annotations

import time

import pytest

from tests.e2e.flows import application, create_active_ledger, sql, wait_until
from tests.people import health_record, person


@pytest.fixture
def admin(api):
    p = person("张晓明")
    api.put_resident(p.id_number, **health_record(p))
    return p


def test_an_admin_creates_a_ledger_and_gets_its_qr(api, admin):
    created = api.post("/api/ledgers", application(admin))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "code_sent"
    assert body["masked_phone"] == admin.phone[:3] + "****" + admin.phone[-4:]
    assert body["ledger_id"] and body["challenge_id"]

    messages = api.get("/api/dev/sms", params={"phone": admin.phone}).json()["items"]
    assert len(messages) == 1 and "创建团体簿" in messages[0]["text"]
    code = api.latest_code(admin.phone)
    assert len(code) == 6

    confirmed = api.post(f"/api/challenges/{body['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 200, confirmed.text
    result = confirmed.json()
    assert result["ledger_status"] == "active"
    token = result["token"]
    assert len(token) >= 22

    ledger = api.get(f"/api/ledgers/{body['ledger_id']}", token=token).json()
    assert ledger["status"] == "active" and ledger["org_name"] == "朝阳区第一小学"
    owner = ledger["admins"][0]
    assert owner["role"] == "owner"
    assert owner["name"] == "张**"
    assert owner["phone"] == admin.phone[:3] + "****" + admin.phone[-4:]
    assert owner["id_number"] == admin.id_number[0] + "*" * 15 + admin.id_number[-2:]

    png = api.get(f"/api/ledgers/{body['ledger_id']}/qr.png", token=token)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    svg = api.get(f"/api/ledgers/{body['ledger_id']}/qr.svg", token=token)
    assert svg.status_code == 200 and b"<svg" in svg.content

    link = api.get(f"/api/ledgers/{body['ledger_id']}/join-link", token=token).json()
    info = api.get(f"/api/join/{link['token']}")
    assert info.status_code == 200
    assert info.json()["org_name"] == "朝阳区第一小学"
    assert info.json()["admin_name"] == "张**"
    assert info.json()["status"] == "active"

    # the same session lists the ledger among "mine"
    mine = api.get("/api/me/ledgers", token=token).json()["items"]
    assert [m["ledger_id"] for m in mine] == [body["ledger_id"]]


def test_rotating_the_qr_invalidates_older_links_and_tampering_fails(api, admin):
    ledger_id, token = create_active_ledger(api, admin)
    old = api.get(f"/api/ledgers/{ledger_id}/join-link", token=token).json()["token"]
    rotated = api.post(f"/api/ledgers/{ledger_id}/qr/rotate", token=token)
    assert rotated.status_code == 200
    new = rotated.json()["token"]
    assert new != old
    assert api.get(f"/api/join/{old}").status_code == 404
    assert api.get(f"/api/join/{new}").status_code == 200
    tampered = new[:-2] + ("A" if new[-2] != "A" else "B") + new[-1]
    bad = api.get(f"/api/join/{tampered}")
    assert bad.status_code == 404
    assert bad.json()["error"]["code"] == "not_found"
    assert api.get("/api/join/nonsense").status_code == 404


def test_a_phone_that_does_not_match_the_health_kit_is_rejected_without_sms(api, running, admin):
    other_phone = person().phone
    created = api.post("/api/ledgers", application(admin, admin_phone=other_phone))
    assert created.status_code == 422, created.text
    error = created.json()["error"]
    assert error["code"] == "identity_rejected"
    assert error["field"] == "admin_phone"
    assert "Health Kit" in error["message"]
    assert api.sms_count(other_phone) == 0
    assert api.sms_count(admin.phone) == 0
    challenge_id = error["details"]["challenge_id"]
    assert api.get(f"/api/challenges/{challenge_id}").json()["status"] == "rejected"
    # nothing half-written: the pending ledger and the applicant's data are gone
    deadline = time.monotonic() + 5
    while sql(running, "SELECT count(*) FROM org.ledgers WHERE owner_challenge_id = %s", challenge_id)[0][0]:
        assert time.monotonic() < deadline, "pending ledger was not discarded"
        time.sleep(0.1)


def test_unknown_id_and_wrong_name_are_rejected(api, admin):
    stranger = person()
    unknown = api.post("/api/ledgers", application(stranger))
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "admin_id_number"
    wrong_name = api.post("/api/ledgers", application(admin, admin_name="李四"))
    assert wrong_name.status_code == 422
    assert wrong_name.json()["error"]["field"] == "admin_name"


@pytest.mark.parametrize(
    "overrides, field, reason",
    [
        ({"admin_id_number": "11010519491231002"}, "admin_id_number", "bad_format"),
        ({"admin_id_number": "110105194912310021"}, "admin_id_number", "bad_check_digit"),
        ({"admin_phone": "12345678901"}, "admin_phone", "not_mainland_mobile"),
        ({"admin_phone": "1380013800"}, "admin_phone", None),
        ({"admin_name": ""}, "admin_name", "required"),
        ({"admin_name": "张" * 31}, "admin_name", "too_long"),
        ({"org_name": ""}, "org_name", "required"),
        ({"org_address": "路" * 121}, "org_address", "too_long"),
        ({"admin_id_type": "driving_licence"}, "admin_id_type", "unknown_id_type"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(api, running, admin, overrides, field, reason):
    # ledgers created since now (an earlier test's pending ledger may be removed meanwhile)
    since = sql(running, "SELECT clock_timestamp()")[0][0]
    response = api.post("/api/ledgers", application(admin, **overrides))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["details"]["fields"]
    if reason:
        assert error["details"]["reasons"][field] == reason
    assert sql(running, "SELECT count(*) FROM org.ledgers WHERE created_at >= %s", since)[0][0] == 0
    assert api.sms_count(admin.phone) == 0


def test_a_body_that_is_not_json_is_refused(api):
    response = api.http.post(api.base_url + "/api/ledgers", data=b"{not json", timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def test_wrong_code_five_times_kills_the_challenge(api, admin):
    body = api.post("/api/ledgers", application(admin)).json()
    right = api.latest_code(admin.phone)
    wrong = "000000" if right != "000000" else "111111"
    url = f"/api/challenges/{body['challenge_id']}/confirm"
    for left in (4, 3, 2, 1):
        response = api.post(url, {"code": wrong})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "wrong_code"
        assert response.json()["error"]["details"]["attempts_left"] == left
    fifth = api.post(url, {"code": wrong})
    assert fifth.status_code == 429 and fifth.json()["error"]["code"] == "too_many_attempts"
    # even the right code is refused now
    assert api.post(url, {"code": right}).json()["error"]["code"] == "too_many_attempts"


def test_malformed_code_and_unknown_challenge(api, admin):
    body = api.post("/api/ledgers", application(admin)).json()
    malformed = api.post(f"/api/challenges/{body['challenge_id']}/confirm", {"code": "12ab"})
    assert malformed.status_code == 400 and malformed.json()["error"]["field"] == "code"
    unknown = api.post("/api/challenges/3f1c1a52-8d55-4a1e-9a57-000000000000/confirm", {"code": "123456"})
    assert unknown.status_code == 404
    assert api.get("/api/challenges/not-a-uuid").status_code == 404


def test_an_expired_code_is_refused(api, running, admin):
    body = api.post("/api/ledgers", application(admin)).json()
    code = api.latest_code(admin.phone)
    # five minutes pass
    sql(running, "UPDATE verify.challenges SET code_expires_at = now() - interval '1 second' WHERE id = %s", body["challenge_id"])
    response = api.post(f"/api/challenges/{body['challenge_id']}/confirm", {"code": code})
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "code_expired"


def test_resend_waits_for_the_cooldown_and_keeps_the_failure_count(api, running, admin):
    body = api.post("/api/ledgers", application(admin)).json()
    challenge = body["challenge_id"]
    first = api.latest_code(admin.phone)
    too_soon = api.post(f"/api/challenges/{challenge}/resend")
    assert too_soon.status_code == 429
    assert too_soon.json()["error"]["code"] == "rate_limited"
    assert 0 < too_soon.json()["error"]["details"]["retry_after"] <= 60
    wrong = "000000" if first != "000000" else "111111"
    assert api.post(f"/api/challenges/{challenge}/confirm", {"code": wrong}).status_code == 422
    # a minute passes
    sql(running, "UPDATE verify.challenges SET code_sent_at = now() - interval '61 seconds' WHERE id = %s", challenge)
    resent = api.post(f"/api/challenges/{challenge}/resend")
    assert resent.status_code == 200, resent.text
    assert resent.json()["attempts_left"] == 4  # a new code does not reset the failures
    second = api.latest_code(admin.phone, after=1)
    if second != first:
        stale = api.post(f"/api/challenges/{challenge}/confirm", {"code": first})
        assert stale.json()["error"]["code"] == "wrong_code"
    ok = api.post(f"/api/challenges/{challenge}/confirm", {"code": second})
    assert ok.status_code == 200, ok.text


def test_a_code_works_once(api, admin):
    body = api.post("/api/ledgers", application(admin)).json()
    code = api.latest_code(admin.phone)
    url = f"/api/challenges/{body['challenge_id']}/confirm"
    assert api.post(url, {"code": code}).status_code == 200
    again = api.post(url, {"code": code})
    assert again.status_code == 409


def test_login_later_with_phone_and_code_then_logout(api, admin):
    ledger_id, _ = create_active_ledger(api, admin)
    sent_before = api.sms_count(admin.phone)
    login = api.post("/api/login", {"phone": admin.phone})
    assert login.status_code == 201, login.text
    assert login.json()["masked_phone"] == admin.phone[:3] + "****" + admin.phone[-4:]
    code = api.latest_code(admin.phone, after=sent_before)
    confirmed = api.post(f"/api/challenges/{login.json()['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 200
    token = confirmed.json()["token"]
    mine = api.get("/api/me/ledgers", token=token)
    assert [m["ledger_id"] for m in mine.json()["items"]] == [ledger_id]
    assert api.post("/api/logout", token=token).status_code == 200
    assert api.get("/api/me/ledgers", token=token).status_code == 401


def test_login_with_an_unknown_phone_sends_nothing(api):
    stranger = person()
    login = api.post("/api/login", {"phone": stranger.phone})
    assert login.status_code == 201
    assert api.sms_count(stranger.phone) == 0
    bad = api.post("/api/login", {"phone": "12345"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "phone"


def test_only_the_ledgers_admins_see_it(api, admin):
    ledger_id, token = create_active_ledger(api, admin)
    other = person("王小红")
    api.put_resident(other.id_number, **health_record(other))
    _, other_token = create_active_ledger(api, other)
    assert api.get(f"/api/ledgers/{ledger_id}").status_code == 401
    assert api.get(f"/api/ledgers/{ledger_id}", token="not-a-session").status_code == 401
    assert api.get(f"/api/ledgers/{ledger_id}", token=other_token).status_code == 403
    assert api.get(f"/api/ledgers/{ledger_id}/qr.png", token=other_token).status_code == 403
    assert api.post(f"/api/ledgers/{ledger_id}/qr/rotate", token=other_token).status_code == 403
    assert api.get(f"/api/ledgers/{ledger_id}", token=token).status_code == 200


def test_no_plaintext_id_or_phone_in_logs_bus_or_storage(api, running):
    running.capture.drain()
    p = person("赵敏")
    api.put_resident(p.id_number, **health_record(p))
    ledger_id, token = create_active_ledger(api, p)
    api.get(f"/api/ledgers/{ledger_id}", token=token)
    api.post("/api/login", {"phone": p.phone})
    wrong = api.post("/api/ledgers", application(p, admin_phone=person().phone))
    assert wrong.status_code == 422
    # every event written so far has been published (the relays empty their outboxes)...
    wait_until(lambda: sql(running, " UNION ALL ".join(
        f"SELECT count(*) FROM {svc}.outbox" for svc in ("org", "verify", "member", "healthsync")
    )) == [(0,)] * 4, what="the outboxes to be published")
    time.sleep(0.5)  # ...and has reached the capture queue
    bus = running.capture.drain()
    assert len(bus) > 10  # the flow really went over the bus
    for body in bus:
        assert p.id_number.encode() not in body
        assert p.phone.encode() not in body
    logs = running.logs()
    assert "POST /api/ledgers" in logs  # the logs are really captured
    assert p.id_number not in logs and p.phone not in logs
    rows = sql(running, "SELECT name_enc, id_number_enc, phone_enc FROM org.admins WHERE ledger_id = %s", ledger_id)
    for column in rows[0]:
        assert p.id_number.encode() not in bytes(column) and p.phone.encode() not in bytes(column)


def test_the_service_logs_carry_no_warning_about_unconfirmed_rpc(api, running, admin):
    # RPCs go out unconfirmed on purpose (an unroutable one ends as the caller's
    # timeout); Nameko's warning about it, at each process's first call, is silenced
    create_active_ledger(api, admin)  # the gateway's RPCs to org and verify
    logs = running.logs()
    assert "POST /api/ledgers" in logs  # the logs are really captured
    assert "Mandatory delivery" not in logs and "UserWarning" not in logs


def test_a_phone_gets_at_most_the_daily_cap_of_codes(api, admin):
    create_active_ledger(api, admin)
    sent = api.sms_count(admin.phone)  # one so far today
    for _ in range(10 - sent):
        assert api.post("/api/login", {"phone": admin.phone}).status_code == 201
    assert api.sms_count(admin.phone) == 10
    capped = api.post("/api/login", {"phone": admin.phone})
    assert capped.status_code == 429
    assert capped.json()["error"]["code"] == "rate_limited" and capped.json()["error"]["field"] == "phone"
    assert api.sms_count(admin.phone) == 10


def test_the_gateway_serves_https_given_a_certificate(running, tmp_path):
    import datetime as dt
    import time as _time

    import requests
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tests.conftest import free_port

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    port = free_port()
    running.stack.start_service("gateway", name="gateway-tls", GATEWAY_ADDRESS=f"127.0.0.1:{port}",
                                GATEWAY_TLS_CERT=str(cert_file), GATEWAY_TLS_KEY=str(key_file))
    try:
        deadline = _time.monotonic() + 30
        while True:
            try:  # ready as the stack counts it: its RPC replies arrive
                health = requests.get(f"https://127.0.0.1:{port}/api/health", verify=str(cert_file), timeout=5)
                if health.status_code == 200 and health.json().get("ok"):
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert _time.monotonic() < deadline, "the TLS gateway did not start"
            _time.sleep(0.3)
        page = requests.get(f"https://127.0.0.1:{port}/", verify=str(cert_file), timeout=5)
        assert page.status_code == 200 and "团体簿" in page.text
        answer = requests.get(f"https://127.0.0.1:{port}/api/ping", verify=str(cert_file), timeout=20)
        assert answer.status_code == 200 and answer.json() == {"pong": True}
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/api/ping", timeout=5)
    finally:
        running.stack.stop("gateway-tls")


def test_a_join_link_can_expire(api, running, admin):
    ledger_id, token = create_active_ledger(api, admin)
    bad = api.get(f"/api/ledgers/{ledger_id}/join-link", token=token, params={"expires_in_days": "0"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "expires_in_days"
    link = api.get(f"/api/ledgers/{ledger_id}/join-link", token=token, params={"expires_in_days": "7"}).json()
    assert link["expires_at"] and api.get(f"/api/join/{link['token']}").status_code == 200
    forever = api.get(f"/api/ledgers/{ledger_id}/join-link", token=token).json()
    assert forever["expires_at"] is None
    png = api.get(f"/api/ledgers/{ledger_id}/qr.png", token=token, params={"expires_in_days": "1"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
