"""个人填 end to end: people join a ledger through its QR link, verified by events
(member → verify → member), use self-service, and admins list and remove members."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import uuid

import pytest

from shared.config import load_settings
from shared.crypto import Crypto
from shared.stack import ROOT
from tests.bus import create_vhost, delete_vhost
from tests.e2e.flows import create_active_ledger, join, join_form, join_token, known_person, sql, wait_until
from tests.people import person


@pytest.fixture
def ledger(api):
    admin = known_person(api, "周老师")
    ledger_id, admin_token = create_active_ledger(api, admin)
    return {"id": ledger_id, "admin": admin, "admin_token": admin_token, "token": join_token(api, ledger_id, admin_token)}


def live_memberships(running, ledger_id: str) -> int:
    return sql(
        running,
        "SELECT count(*) FROM member.memberships WHERE ledger_id = %s AND status IN ('pending', 'active')",
        ledger_id,
    )[0][0]


def test_a_person_joins_through_the_qr_link(api, running, ledger):
    info = api.get(f"/api/join/{ledger['token']}")
    assert info.status_code == 200
    assert info.json()["org_name"] == "朝阳区第一小学" and info.json()["admin_name"] == "周**"
    assert info.json()["consent"]["version"] and "退出" in info.json()["consent"]["text"]

    joiner = known_person(api, "李小龙")
    requested = api.post(f"/api/join/{ledger['token']}", join_form(joiner))
    assert requested.status_code == 201, requested.text
    body = requested.json()
    masked = joiner.phone[:3] + "****" + joiner.phone[-4:]
    assert body["status"] == "code_sent" and body["masked_phone"] == masked
    assert api.get(f"/api/challenges/{body['challenge_id']}").json()["masked_phone"] == masked
    # the consent is stored with the pending membership
    consent = sql(running, "SELECT consent_version, consented_at FROM member.memberships WHERE id = %s", body["membership_id"])
    assert consent[0][0] == info.json()["consent"]["version"] and consent[0][1] is not None

    code = api.latest_code(joiner.phone)
    confirmed = api.post(f"/api/challenges/{body['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["membership_status"] == "active"
    member_token = confirmed.json()["token"]

    mine = api.get("/api/me/memberships", token=member_token).json()["items"]
    assert [(m["membership_id"], m["org_name"], m["status"]) for m in mine] == [
        (body["membership_id"], "朝阳区第一小学", "active")
    ]
    assert mine[0]["joined_at"]

    members = api.get(f"/api/ledgers/{ledger['id']}/members", token=ledger["admin_token"]).json()
    assert members["total"] == 1 and members["page"] == 1
    row = members["items"][0]
    assert row["name"] == "李小龙"
    assert row["phone"] == masked
    assert row["id_number"] == joiner.id_number[0] + "*" * 15 + joiner.id_number[-2:]
    assert row["status"] == "active" and row["joined_at"]
    # stored encrypted
    stored = sql(running, "SELECT name_enc, id_number_enc, phone_enc FROM member.memberships WHERE id = %s", body["membership_id"])[0]
    for column in stored:
        assert joiner.id_number.encode() not in bytes(column) and joiner.phone.encode() not in bytes(column)


def test_a_phone_not_registered_with_the_health_kit_is_refused_without_sms(api, running, ledger):
    joiner = known_person(api, "王五")
    other_phone = person().phone
    refused = api.post(f"/api/join/{ledger['token']}", join_form(joiner, phone=other_phone))
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "identity_rejected" and error["field"] == "phone"
    assert "not the one registered with the Health Kit" in error["message"]
    assert api.sms_count(other_phone) == 0 and api.sms_count(joiner.phone) == 0
    wait_until(lambda: live_memberships(running, ledger["id"]) == 0, what="rejected pending membership to go")


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"consent": False}, "consent"),
        ({"consent": None}, "consent"),
        ({"id_number": "110105194912310021"}, "id_number"),
        ({"phone": "2345"}, "phone"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_join_input_names_the_field(api, running, ledger, overrides, field):
    joiner = known_person(api)
    response = api.post(f"/api/join/{ledger['token']}", join_form(joiner, **overrides))
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["details"]["fields"]
    assert live_memberships(running, ledger["id"]) == 0


def test_a_method_an_endpoint_does_not_take_is_answered_in_the_api_error_shape(api, ledger):
    for method in ("PUT", "DELETE"):
        response = api.http.request(method, f"{api.base_url}/api/join/{ledger['token']}", timeout=10)
        assert response.status_code == 405, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    # the pages outside /api/ keep the web server's own answer
    assert api.http.request("PUT", f"{api.base_url}/join/x", timeout=10).status_code == 405


def test_five_wrong_codes_end_the_join_and_remove_its_data(api, running, ledger):
    joiner = known_person(api)
    body = api.post(f"/api/join/{ledger['token']}", join_form(joiner)).json()
    right = api.latest_code(joiner.phone)
    wrong = "000000" if right != "000000" else "111111"
    url = f"/api/challenges/{body['challenge_id']}/confirm"
    codes = [api.post(url, {"code": wrong}).json()["error"]["code"] for _ in range(5)]
    assert codes == ["wrong_code"] * 4 + ["too_many_attempts"]
    assert api.post(url, {"code": right}).status_code == 429
    wait_until(lambda: live_memberships(running, ledger["id"]) == 0, what="failed pending membership to go")


def test_an_expired_code_is_refused_and_the_pending_join_is_swept(api, running, ledger):
    joiner = known_person(api)
    body = api.post(f"/api/join/{ledger['token']}", join_form(joiner)).json()
    code = api.latest_code(joiner.phone)
    sql(running, "UPDATE verify.challenges SET code_expires_at = now() - interval '1 second' WHERE id = %s", body["challenge_id"])
    expired = api.post(f"/api/challenges/{body['challenge_id']}/confirm", {"code": code})
    assert expired.status_code == 410
    # verify's sweep expires the challenge; member drops the pending membership
    wait_until(lambda: live_memberships(running, ledger["id"]) == 0, what="expired pending membership to go")
    assert api.get(f"/api/challenges/{body['challenge_id']}").json()["status"] == "expired"


def test_joining_twice_gives_a_clear_answer_and_one_membership(api, running, ledger):
    joiner = known_person(api)
    join(api, ledger["token"], joiner)
    sent = api.sms_count(joiner.phone)
    again = api.post(f"/api/join/{ledger['token']}", join_form(joiner))
    assert again.status_code == 409
    assert again.json()["error"]["details"]["reason"] == "already_member"
    assert live_memberships(running, ledger["id"]) == 1
    assert api.sms_count(joiner.phone) == sent  # no code for it


def test_who_is_a_member_is_not_told_to_someone_who_only_has_the_id_number(api, running, ledger):
    # a clinic's or a school's ledger: holding its QR code and someone's ID number must
    # not tell whether they belong to it
    member, outsider = known_person(api), known_person(api)
    member_id, _ = join(api, ledger["token"], member)

    def answer(p, **overrides) -> tuple[int, str]:
        response = api.post(f"/api/join/{ledger['token']}", join_form(p, **overrides))
        return response.status_code, response.json()["error"]["details"]["reason"]

    # the member's ID number with details the Health Kit does not agree with is answered
    # as anyone's would be
    assert answer(member, phone="13111111111") == answer(outsider, phone="13111111111") == (422, "phone_mismatch")
    assert answer(member, name="某某") == answer(outsider, name="某某") == (422, "name_mismatch")
    assert live_memberships(running, ledger["id"]) == 1
    # nor do the challenges tell: each request has a membership id of its own, as anyone's
    subjects = []
    for _ in range(2):
        probe = api.post(f"/api/join/{ledger['token']}", join_form(member, phone="13111111111"))
        challenge = api.get(f"/api/challenges/{probe.json()['error']['details']['challenge_id']}").json()
        subjects.append(challenge["subject_id"])
    assert len(set(subjects)) == 2 and member_id not in subjects


def test_concurrent_joins_of_one_person_make_exactly_one_membership(api, running, ledger):
    joiner = known_person(api)

    def attempt(_):
        return running.api().post(f"/api/join/{ledger['token']}", join_form(joiner))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(attempt, range(4)))
    assert all(r.status_code in (201, 409) for r in responses), [r.text for r in responses]
    assert live_memberships(running, ledger["id"]) == 1
    survivor = sql(
        running, "SELECT challenge_id FROM member.memberships WHERE ledger_id = %s AND status = 'pending'", ledger["id"]
    )[0][0]
    assert sum(1 for r in responses if r.status_code == 201 and r.json()["challenge_id"] == survivor) == 1
    # the codes may arrive in any order; one of them is the survivor's (at most 4 tries of 5)
    wait_until(lambda: api.sms_count(joiner.phone) == sum(r.status_code == 201 for r in responses), what="codes")
    codes = [m["text"] for m in api.get("/api/dev/sms", params={"phone": joiner.phone}).json()["items"]]
    confirmed = None
    for text in codes:
        code = next(w for w in "".join(c if c.isdigit() else " " for c in text).split() if len(w) == 6)
        confirmed = api.post(f"/api/challenges/{survivor}/confirm", {"code": code})
        if confirmed.status_code == 200:
            break
    assert confirmed.status_code == 200, confirmed.text
    assert live_memberships(running, ledger["id"]) == 1
    wait_until(
        lambda: sql(running, "SELECT count(*) FROM member.memberships WHERE ledger_id = %s AND status = 'active'", ledger["id"])[0][0] == 1,
        what="the membership to become active",
    )


def requested(api, token: str, joiner) -> tuple[dict, str]:
    """A join requested, and the code it sent: (the response's body, the code)."""
    before = api.sms_count(joiner.phone)
    response = api.post(f"/api/join/{token}", join_form(joiner))
    assert response.status_code == 201, response.text
    return response.json(), api.latest_code(joiner.phone, after=before)


def test_sending_the_form_again_replaces_the_first_request_and_ends_its_code(api, running, ledger):
    # a reload, or a second tab: the earlier code must not lead to "joined" for nothing
    joiner = known_person(api)
    first, first_code = requested(api, ledger["token"], joiner)
    wrong = "000000" if first_code != "000000" else "111111"
    for _ in range(2):
        api.post(f"/api/challenges/{first['challenge_id']}/confirm", {"code": wrong})
    second, second_code = requested(api, ledger["token"], joiner)
    # sending the form again does not reset the wrong tries (5 in all)
    wrong = "000000" if second_code != "000000" else "111111"
    again = api.post(f"/api/challenges/{second['challenge_id']}/confirm", {"code": wrong})
    assert again.json()["error"]["details"]["attempts_left"] == 2, again.text
    stale = api.post(f"/api/challenges/{first['challenge_id']}/confirm", {"code": first_code})
    assert stale.status_code == 422, stale.text
    assert stale.json()["error"]["details"]["reason"] == "superseded"
    assert "latest request" in stale.json()["error"]["message"]
    confirmed = api.post(f"/api/challenges/{second['challenge_id']}/confirm", {"code": second_code})
    assert confirmed.status_code == 200 and confirmed.json()["membership_status"] == "active", confirmed.text
    assert live_memberships(running, ledger["id"]) == 1


def test_someone_else_with_the_id_number_cannot_cancel_a_join_under_way(api, running, ledger):
    joiner = known_person(api)
    join_request, code = requested(api, ledger["token"], joiner)
    # a stranger who has the ID number, but not the phone the Health Kit holds, gets the
    # Health Kit's answer, as for anyone else's ID number (not "a join is under way")
    outsider = known_person(api)
    for p in (joiner, outsider):
        stranger = api.post(f"/api/join/{ledger['token']}", join_form(p, phone="13111111111"))
        assert stranger.status_code == 422, stranger.text
        assert stranger.json()["error"]["details"]["reason"] == "phone_mismatch"
    confirmed = api.post(f"/api/challenges/{join_request['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 200 and confirmed.json()["membership_status"] == "active", confirmed.text


def test_a_join_whose_ledger_closed_before_the_code_is_not_reported_as_joined(api, running, ledger):
    joiner = known_person(api)
    join_request, code = requested(api, ledger["token"], joiner)
    sent = api.sms_count(ledger["admin"].phone)
    close = api.post(f"/api/ledgers/{ledger['id']}/close", token=ledger["admin_token"])
    assert close.status_code == 201, close.text
    closed = api.post(f"/api/challenges/{close.json()['challenge_id']}/confirm",
                      {"code": api.latest_code(ledger["admin"].phone, after=sent)})
    assert closed.status_code == 200 and closed.json()["ledger_status"] == "closed", closed.text
    wait_until(lambda: sql(running, "SELECT count(*) FROM member.memberships WHERE id = %s",
                           join_request["membership_id"])[0][0] == 0,
               what="the pending join to go with the ledger")
    confirmed = api.post(f"/api/challenges/{join_request['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 409, confirmed.text
    assert confirmed.json()["error"]["details"]["reason"] == "join_ended"


def test_one_person_may_belong_to_many_ledgers(api, ledger):
    other_admin = known_person(api, "钱老板")
    other_id, other_admin_token = create_active_ledger(api, other_admin, org_name="幸福里社区")
    joiner = known_person(api)
    join(api, ledger["token"], joiner)
    _, member_token = join(api, join_token(api, other_id, other_admin_token), joiner)
    names = sorted(m["org_name"] for m in api.get("/api/me/memberships", token=member_token).json()["items"])
    assert names == ["幸福里社区", "朝阳区第一小学"]


def test_a_crowd_scanning_one_link_costs_org_one_call_and_a_rotation_shows_at_once(api, running, ledger):
    def calls_with(token: str) -> int:  # RPC requests on the bus that carry the link
        return sum(1 for body in running.capture.drain() if token.encode() in body and b'"args"' in body)

    token = ledger["token"]
    running.capture.drain()
    assert api.get(f"/api/join/{token}").status_code == 200
    assert calls_with(token) <= 1  # the first look (an earlier one may be remembered)
    for _ in range(5):
        info = api.get(f"/api/join/{token}")
        assert info.status_code == 200 and info.json()["ledger_id"] == ledger["id"]
    assert calls_with(token) == 0
    rotated = api.post(f"/api/ledgers/{ledger['id']}/qr/rotate", token=ledger["admin_token"]).json()["token"]
    assert api.get(f"/api/join/{token}").status_code == 404
    assert api.get(f"/api/join/{rotated}").status_code == 200


def test_rotated_or_tampered_links_are_refused(api, running, ledger):
    version = "SELECT qr_version FROM member.ledgers WHERE ledger_id = %s"
    # member learns of the ledger by event (org.ledger_activated), maybe after the fixture returns
    before = wait_until(lambda: sql(running, version, ledger["id"]), what="member to know the ledger")[0][0]
    rotated = api.post(f"/api/ledgers/{ledger['id']}/qr/rotate", token=ledger["admin_token"]).json()["token"]
    joiner = known_person(api)
    wait_until(lambda: api.get(f"/api/join/{rotated}").status_code == 200, what="new link")
    old = ledger["token"]
    # member's projection learns of the rotation by event (org.qr_rotated)
    wait_until(lambda: sql(running, version, ledger["id"])[0][0] > before, what="member to hear of the rotation")
    assert api.post(f"/api/join/{old}", join_form(joiner)).status_code == 404
    tampered = rotated[:-3] + ("AAA" if rotated[-3:] != "AAA" else "BBB")
    assert api.post(f"/api/join/{tampered}", join_form(joiner)).status_code == 404
    assert api.post("/api/join/garbage", join_form(joiner)).status_code == 404
    assert api.sms_count(joiner.phone) == 0
    assert api.post(f"/api/join/{rotated}", join_form(joiner)).status_code == 201


def set_member_cap(running, ledger_id: str, cap) -> subprocess.CompletedProcess:
    """The operator's command (python -m services.org.cli set-member-cap)."""
    return subprocess.run(
        [sys.executable, "-m", "services.org.cli", "set-member-cap", ledger_id, str(cap)],
        cwd=ROOT, env=running.env, capture_output=True, text=True, timeout=60,
    )


def member_cap(running, ledger_id: str) -> int | None:
    rows = sql(running, "SELECT member_cap FROM member.ledgers WHERE ledger_id = %s", ledger_id)
    return rows[0][0] if rows else None


def test_a_full_ledger_refuses_new_members_until_the_operator_raises_its_cap(api, running, ledger):
    # the cap is per ledger (LEDGER_MEMBER_CAP for a new one); the operator sets this one's to 1
    wait_until(lambda: member_cap(running, ledger["id"]), what="member to know the ledger")
    lowered = set_member_cap(running, ledger["id"], 1)
    assert lowered.returncode == 0, lowered.stderr
    assert "朝阳区第一小学" in lowered.stdout and "member cap 10,000 → 1" in lowered.stdout
    wait_until(lambda: member_cap(running, ledger["id"]) == 1, what="member to hear of the new cap")
    join(api, ledger["token"], known_person(api))
    second = known_person(api)
    refused = api.post(f"/api/join/{ledger['token']}", join_form(second))
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["reason"] == "ledger_full"

    raised = set_member_cap(running, ledger["id"], 2)
    assert raised.returncode == 0 and "member cap 1 → 2" in raised.stdout
    wait_until(lambda: member_cap(running, ledger["id"]) == 2, what="member to hear of the raised cap")
    join(api, ledger["token"], second)  # there is room again


def test_the_operator_is_told_why_a_member_cap_was_not_changed(running, ledger):
    zero = set_member_cap(running, ledger["id"], 0)
    assert zero.returncode == 1 and "member_cap: must be a whole number from 1 to 1,000,000" in zero.stderr
    unknown = set_member_cap(running, str(uuid.uuid4()), 5)
    assert unknown.returncode == 1 and "No such ledger" in unknown.stderr
    assert wait_until(lambda: member_cap(running, ledger["id"])) == 10000  # nothing changed


def test_the_operator_is_told_when_org_does_not_answer(running):
    vhost, amqp_uri = create_vhost(trace=False)  # a bus where no org service runs
    try:
        done = subprocess.run(
            [sys.executable, "-m", "services.org.cli", "set-member-cap", str(uuid.uuid4()), "5"],
            cwd=ROOT, env={**running.env, "AMQP_URI": amqp_uri, "RPC_TIMEOUT": "1"},
            capture_output=True, text=True, timeout=60,
        )
    finally:
        delete_vhost(vhost)
    assert done.returncode == 1
    assert "the org service did not answer within 1 s; is it running? (make status)" in done.stderr
    assert "Traceback" not in done.stderr and "Eventlet is deprecated" not in done.stderr


def test_a_closed_ledger_refuses_joins_and_its_members_see_it_closed(api, running, ledger):
    member = known_person(api)
    member_id, member_token = join(api, ledger["token"], member)
    assert verified_phone_kept(running, member) and verified_phone_kept(running, ledger["admin"])
    sent = api.sms_count(ledger["admin"].phone)
    close = api.post(f"/api/ledgers/{ledger['id']}/close", token=ledger["admin_token"])
    assert close.status_code == 201, close.text
    code = api.latest_code(ledger["admin"].phone, after=sent)
    # the code's SMS says what it confirms
    org_name = api.get(f"/api/join/{ledger['token']}").json()["org_name"]
    sms = api.get("/api/dev/sms", params={"phone": ledger["admin"].phone}).json()["items"][0]["text"]
    assert f"用于关闭团体簿「{org_name}」并销毁其成员数据" in sms, sms
    closed = api.post(f"/api/challenges/{close.json()['challenge_id']}/confirm", {"code": code})
    assert closed.status_code == 200 and closed.json()["ledger_status"] == "closed"
    wait_until(lambda: api.get(f"/api/join/{ledger['token']}").json().get("status") == "closed", what="closed")
    refused = wait_until(
        lambda: (r := api.post(f"/api/join/{ledger['token']}", join_form(known_person(api)))).status_code == 409
        and r.json(),
        what="joins to be refused",
    )
    assert refused["error"]["details"]["reason"] == "ledger_closed"
    mine = api.get("/api/me/memberships", token=member_token).json()["items"]
    assert [(m["membership_id"], m["ledger_status"]) for m in mine] == [(member_id, "closed")]
    # the member service's data key for the ledger is gone: stored data is unreadable
    assert sql(running, "SELECT count(*) FROM member.ledger_keys WHERE ledger_id = %s", ledger["id"])[0][0] == 0
    # the member and the owner belong to no other ledger: verify forgets their phones too
    wait_until(lambda: not verified_phone_kept(running, member), what="verify to forget the member's phone")
    wait_until(lambda: not verified_phone_kept(running, ledger["admin"]), what="verify to forget the owner's phone")


def test_a_member_leaves_at_once_and_their_data_goes(api, running, ledger):
    joiner = known_person(api, "孙悟空")
    # what the joiner agrees to says what happens on leaving, as asserted below
    consent = api.get(f"/api/join/{ledger['token']}").json()["consent"]["text"]
    assert "退出后您的证件号、手机号和健康信息立即删除，管理员只能看到您的姓名和退出时间" in consent
    membership_id, member_token = join(api, ledger["token"], joiner)
    left = api.post(f"/api/me/memberships/{membership_id}/leave", token=member_token)
    assert left.status_code == 200 and left.json()["status"] == "left"
    assert api.get("/api/me/memberships", token=member_token).json()["items"] == []
    active = api.get(f"/api/ledgers/{ledger['id']}/members", token=ledger["admin_token"]).json()
    assert active["total"] == 0
    gone = api.get(f"/api/ledgers/{ledger['id']}/members", token=ledger["admin_token"], params={"status": "left"}).json()
    assert [(m["name"], m["status"], m["id_number"], m["phone"]) for m in gone["items"]] == [("孙悟空", "left", None, None)]
    assert gone["items"][0]["left_at"]
    row = sql(running, "SELECT person_ref, id_number_enc, phone_enc FROM member.memberships WHERE id = %s", membership_id)[0]
    assert row == (None, None, None)
    # leaving twice is not possible
    assert api.post(f"/api/me/memberships/{membership_id}/leave", token=member_token).status_code == 404


def verified_phone_kept(running, p) -> bool:
    """Whether verify still keeps this person's phone (for logins and reminders)."""
    ref = Crypto(load_settings(running.env)).person_ref("resident_id", p.id_number)
    return bool(sql(running, "SELECT 1 FROM verify.identities WHERE person_ref = %s", ref))


def verify_heard_every_leave(running) -> bool:
    [(left, heard)] = sql(
        running,
        "SELECT (SELECT count(*) FROM member.memberships WHERE status IN ('left', 'removed')),"
        " (SELECT count(*) FROM verify.handled_events WHERE handler = 'verify.on_member_left')",
    )
    return left == heard


def test_who_leaves_their_last_ledger_is_forgotten_by_verify_too(api, running, ledger):
    other_owner = known_person(api, "李老板")
    other_id, other_token = create_active_ledger(api, other_owner, org_name="和平里社区")
    joiner = known_person(api, "唐三藏")
    first, member_token = join(api, ledger["token"], joiner)
    second, _ = join(api, join_token(api, other_id, other_token), joiner)
    assert verified_phone_kept(running, joiner)

    assert api.post(f"/api/me/memberships/{first}/leave", token=member_token).status_code == 200
    wait_until(lambda: verify_heard_every_leave(running), what="verify to hear of the leave")
    assert verified_phone_kept(running, joiner)  # still a member elsewhere

    assert api.post(f"/api/me/memberships/{second}/leave", token=member_token).status_code == 200
    wait_until(lambda: not verified_phone_kept(running, joiner), what="verify to forget the phone")
    # a login to that phone now finds nobody: no code is sent
    sent = api.sms_count(joiner.phone)
    assert api.post("/api/login", {"phone": joiner.phone}).status_code == 201
    assert api.sms_count(joiner.phone) == sent

    # someone who administers an active ledger keeps their phone when they leave their only membership
    owner_membership, owner_token = join(api, ledger["token"], other_owner)
    assert api.post(f"/api/me/memberships/{owner_membership}/leave", token=owner_token).status_code == 200
    wait_until(lambda: verify_heard_every_leave(running), what="verify to hear of the owner's leave")
    assert verified_phone_kept(running, other_owner)


def test_an_admin_removes_a_member_with_a_reason(api, running, ledger):
    membership_id, _ = join(api, ledger["token"], known_person(api))
    url = f"/api/ledgers/{ledger['id']}/members/{membership_id}"
    no_reason = api.http.delete(api.base_url + url, headers={"Authorization": f"Bearer {ledger['admin_token']}"}, timeout=10)
    assert no_reason.status_code == 400 and no_reason.json()["error"]["field"] == "reason"
    removed = api.http.delete(
        api.base_url + url, json={"reason": "已离职"}, headers={"Authorization": f"Bearer {ledger['admin_token']}"}, timeout=10
    )
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    row = sql(running, "SELECT status, person_ref, id_number_enc, phone_enc, left_reason FROM member.memberships WHERE id = %s", membership_id)[0]
    assert row == ("removed", None, None, None, "已离职")


def test_authorisation_of_member_data(api, ledger):
    membership_id, member_token = join(api, ledger["token"], known_person(api))
    other_admin = known_person(api)
    other_id, other_token = create_active_ledger(api, other_admin)
    members = f"/api/ledgers/{ledger['id']}/members"
    assert api.get(members).status_code == 401
    assert api.get(members, token="forged").status_code == 401
    # an admin of another ledger
    assert api.get(members, token=other_token).status_code == 403
    assert api.http.delete(
        f"{api.base_url}{members}/{membership_id}", json={"reason": "x"},
        headers={"Authorization": f"Bearer {other_token}"}, timeout=10,
    ).status_code == 403
    # a member cannot list their own ledger's members
    assert api.get(members, token=member_token).status_code == 403
    # nobody else can leave for a member; an admin's session cannot either
    assert api.post(f"/api/me/memberships/{membership_id}/leave", token=other_token).status_code == 404
    assert api.post(f"/api/me/memberships/{membership_id}/leave", token=ledger["admin_token"]).status_code == 404
    assert api.post(f"/api/me/memberships/{membership_id}/leave").status_code == 401
    assert api.get(f"/api/ledgers/{other_id}/members", token=ledger["admin_token"]).status_code in (403, 404)
    assert api.get(members, token=ledger["admin_token"], params={"page_size": 1000}).status_code == 400
