"""机构用 end to end: what an organisation's admins see and do — the health view with
filters, sorting and stats; rules; exports; co-admins and ownership; the access log;
alerts and reminders; closing and retention."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from shared.config import load_settings
from shared.crypto import Crypto, DecryptionError, crypto
from tests.e2e.flows import create_active_ledger, join, join_token, known_person, sql, wait_until

HOURS = timedelta(hours=1)


def ago(hours: float) -> str:
    return (datetime.now(timezone.utc) - hours * HOURS).isoformat()


def members(api, ledger, token=None, **params) -> dict:
    response = api.get(f"/api/ledgers/{ledger['id']}/members", token=token or ledger["admin_token"], params=params)
    assert response.status_code == 200, response.text
    return response.json()


def names(page: dict) -> list[str]:
    return [m["name"] for m in page["items"]]


def delete(api, path, token, **body):
    return api.http.delete(api.base_url + path, json=body or None, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def confirm_latest(api, phone: str, challenge_id: str, before: int):
    code = api.latest_code(phone, after=before)
    return api.post(f"/api/challenges/{challenge_id}/confirm", {"code": code})


def new_ledger(api, org_name="星光科技有限公司"):
    owner = known_person(api, "欧阳主任")
    ledger_id, token = create_active_ledger(api, owner, org_name=org_name)
    return {"id": ledger_id, "owner": owner, "admin_token": token, "token": join_token(api, ledger_id, token)}


@pytest.fixture(scope="module")
def office(running):
    """A ledger with five members in different health states."""
    api = running.api()
    ledger = new_ledger(api)
    people = {
        "安然": dict(code_status="green", last_test_sampled_at=ago(10), vaccination="booster"),
        "白露": dict(code_status="yellow", last_test_sampled_at=ago(30), vaccination="primary"),
        "陈红": dict(code_status="red", popup="弹窗一", last_test_sampled_at=ago(60), vaccination="incomplete"),
        "丁老": dict(code_status="green", last_test_sampled_at=ago(100), vaccination="none_found"),
        "范无": dict(code_status="green", last_test_sampled_at=None, last_test_result=None, vaccination="unsuitable"),
    }
    ledger["people"] = {}
    for name, health in people.items():
        p = known_person(api, name, **health)
        membership_id, member_token = join(api, ledger["token"], p)
        ledger["people"][name] = {"person": p, "id": membership_id, "token": member_token}
    wait_until(lambda: all(m.get("synced_at") for m in members(api, ledger)["items"]) and
               members(api, ledger)["total"] == 5, what="everyone's first check")
    return ledger


def test_the_ledger_view_has_the_health_fields_masked(api, office):
    page = members(api, office)
    assert page["total"] == 5 and page["page"] == 1 and page["page_size"] == 50
    row = {m["name"]: m for m in page["items"]}["陈红"]
    p = office["people"]["陈红"]["person"]
    for field in ("code_status", "popup", "test_days", "test_result", "vaccination", "synced_at", "stale",
                  "abnormal", "abnormal_reasons"):
        assert field in row
    assert row["code_status"] == "red" and row["popup"] == "弹窗一"
    assert row["test_result"] == "negative" and row["test_days"] in (2, 3)
    assert row["vaccination"] == "incomplete"
    assert row["abnormal"] is True
    assert {r["code"] for r in row["abnormal_reasons"]} == {"code_not_green", "popup"}
    assert row["phone"] == p.phone[:3] + "****" + p.phone[-4:]
    assert row["id_number"] == p.id_number[0] + "*" * 15 + p.id_number[-2:]
    # default rules: green code, test within 72 h, pop-ups abnormal
    abnormal = {m["name"] for m in page["items"] if m["abnormal"]}
    assert abnormal == {"白露", "陈红", "丁老", "范无"}
    assert {r["code"] for r in {m["name"]: m for m in page["items"]}["范无"]["abnormal_reasons"]} == {"no_test"}


def test_filters_sorting_and_pagination(api, office):
    assert set(names(members(api, office, abnormal="true"))) == {"白露", "陈红", "丁老", "范无"}
    assert names(members(api, office, abnormal="false")) == ["安然"]
    assert names(members(api, office, code_status="yellow")) == ["白露"]
    assert set(names(members(api, office, test_older_than_hours=48))) == {"陈红", "丁老"}
    assert names(members(api, office, no_test="true")) == ["范无"]
    assert names(members(api, office, vaccination="primary")) == ["白露"]
    assert names(members(api, office, test_age="h48")) == ["白露"]
    assert names(members(api, office, test_age="none")) == ["范无"]
    # a health filter and a name search together: fields held by different services
    assert names(members(api, office, abnormal="true", q="陈")) == ["陈红"]
    assert names(members(api, office, abnormal="false", q="陈")) == []
    # the last four digits of a phone, as the masked phone shows them, find its member
    tail = office["people"]["陈红"]["person"].phone[-4:]
    assert "陈红" in names(members(api, office, q=tail))
    assert all(m["phone"].endswith(tail) for m in members(api, office, q=tail)["items"])
    today = datetime.now(timezone(timedelta(hours=8))).date()
    assert len(names(members(api, office, joined_from=today.isoformat(), joined_to=today.isoformat()))) == 5
    assert names(members(api, office, joined_to=(today - timedelta(days=1)).isoformat())) == []
    # sorting
    assert names(members(api, office, sort="test_days", order="desc")) == ["丁老", "陈红", "白露", "安然", "范无"]
    assert names(members(api, office, sort="test_days", order="asc"))[:4] == ["安然", "白露", "陈红", "丁老"]
    by_name = names(members(api, office, sort="name"))
    assert by_name == sorted(by_name)
    assert names(members(api, office, sort="joined_at", order="asc")) == ["安然", "白露", "陈红", "丁老", "范无"]
    # pages
    first = members(api, office, sort="joined_at", order="asc", page=1, page_size=2)
    second = members(api, office, sort="joined_at", order="asc", page=2, page_size=2)
    assert first["total"] == second["total"] == 5
    assert names(first) + names(second) == ["安然", "白露", "陈红", "丁老"]
    past_the_end = members(api, office, sort="joined_at", order="asc", page=4, page_size=2)
    assert past_the_end["total"] == 5 and past_the_end["items"] == [] and past_the_end["page"] == 4
    paged = members(api, office, abnormal="true", sort="name", page=2, page_size=3)
    assert paged["total"] == 4 and len(paged["items"]) == 1


@pytest.mark.parametrize(
    "params, field",
    [({"code_status": "purple"}, "code_status"), ({"test_older_than_hours": "x"}, "test_older_than_hours"),
     ({"sort": "phone"}, "sort"), ({"joined_from": "yesterday"}, "joined_from"), ({"page_size": "0"}, "page_size"),
     ({"abnormal": "maybe"}, "abnormal")],
)
def test_bad_filters_name_the_parameter(api, office, params, field):
    response = api.get(f"/api/ledgers/{office['id']}/members", token=office["admin_token"], params=params)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


def test_those_who_left_are_searched_sorted_and_filtered_by_join_date(api, running):
    """全部 and 已退出/移除: the name search, the name sort and the join dates apply to
    everyone listed; a health filter, which only active members can meet, is refused."""
    ledger = new_ledger(api, org_name="晨光印刷厂")
    joined = {}
    for name in ("王五", "李四", "王小红", "赵六"):
        p = known_person(api, name)
        joined[name] = join(api, ledger["token"], p)
    left = api.post(f"/api/me/memberships/{joined['王小红'][0]}/leave", token=joined["王小红"][1])
    assert left.status_code == 200, left.text
    removed = delete(api, f"/api/ledgers/{ledger['id']}/members/{joined['赵六'][0]}", ledger["admin_token"], reason="已离职")
    assert removed.status_code == 200, removed.text
    everyone = {"王五", "李四", "王小红", "赵六"}
    assert set(names(members(api, ledger, status="all"))) == everyone

    # the name search
    assert names(members(api, ledger, status="all", q="王小红")) == ["王小红"]
    assert set(names(members(api, ledger, status="all", q="王"))) == {"王五", "王小红"}
    assert names(members(api, ledger, status="left", q="王小红")) == ["王小红"]
    assert names(members(api, ledger, status="left", q="王")) == ["王小红"]  # 王五 is still a member
    assert names(members(api, ledger, status="left", q="李四")) == []
    found = members(api, ledger, status="all", q="赵六")
    assert found["total"] == 1 and found["items"][0]["status"] == "removed" and found["items"][0]["phone"] is None
    # active members found this way still show their health
    assert "code_status" in members(api, ledger, status="all", q="王五")["items"][0]

    # the name sort, and its pages
    by_name = names(members(api, ledger, status="all", sort="name"))
    assert by_name == sorted(everyone)
    assert names(members(api, ledger, status="all", sort="name", order="desc")) == by_name[::-1]
    second = members(api, ledger, status="all", sort="name", page=2, page_size=3)
    assert second["total"] == 4 and names(second) == by_name[3:]
    assert names(members(api, ledger, status="left", sort="name")) == sorted({"王小红", "赵六"})

    # the join dates: calendar days in Asia/Shanghai
    today = datetime.now(timezone(timedelta(hours=8))).date()
    assert set(names(members(api, ledger, status="all", joined_from=today.isoformat(), joined_to=today.isoformat()))) == everyone
    assert names(members(api, ledger, status="all", joined_to=(today - timedelta(days=1)).isoformat())) == []
    # 王小红 joined (by the record) ten days ago at 00:30 in Beijing, 16:30 UTC the day before
    day = today - timedelta(days=10)
    sql(running, "UPDATE member.memberships SET joined_at = %s WHERE id = %s",
        datetime(day.year, day.month, day.day, 0, 30, tzinfo=timezone(timedelta(hours=8))), joined["王小红"][0])
    assert names(members(api, ledger, status="all", joined_from=day.isoformat(), joined_to=day.isoformat())) == ["王小红"]
    assert names(members(api, ledger, status="left", joined_to=(day - timedelta(days=1)).isoformat())) == []
    assert set(names(members(api, ledger, status="all", joined_from=(day + timedelta(days=1)).isoformat()))) == everyone - {"王小红"}
    assert names(members(api, ledger, status="all", q="王", joined_to=day.isoformat())) == ["王小红"]

    # the access log has the filters as the admin gave them
    log = api.get(f"/api/ledgers/{ledger['id']}/access-log", token=ledger["admin_token"]).json()["items"]
    assert {"status": "left", "q": "李四"} in [entry["filters"] for entry in log]

    # health filters mean active members only: refused, naming the field
    for params, field in [({"code_status": "red"}, "code_status"), ({"abnormal": "true"}, "abnormal"),
                          ({"sort": "test_days"}, "sort")]:
        for status in ("all", "left"):
            response = api.get(f"/api/ledgers/{ledger['id']}/members", token=ledger["admin_token"],
                               params={"status": status, **params})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["field"] == field and "active members only" in error["details"]["fields"][field]


def test_stats_count_what_the_filters_show(api, office):
    stats = api.get(f"/api/ledgers/{office['id']}/stats", token=office["admin_token"]).json()
    assert stats["members_total"] == 5 and stats["abnormal"] == 4
    assert stats["code_status"] == {"green": 3, "yellow": 1, "red": 1, "unknown": 0}
    assert stats["test_age"] == {"h24": 1, "h48": 1, "h72": 1, "older": 1, "none": 1, "pending": 0}
    assert stats["vaccination"]["booster"] == 1 and stats["vaccination"]["unsuitable"] == 1
    for bucket, count in stats["test_age"].items():
        assert members(api, office, test_age=bucket)["total"] == count
    for colour, count in stats["code_status"].items():
        assert members(api, office, code_status=colour)["total"] == count
    assert members(api, office, abnormal="true")["total"] == stats["abnormal"]
    # how fresh the data is: the oldest and newest of the members' last checks
    checked = sorted(m["synced_at"] for m in members(api, office, page_size=200)["items"] if m.get("synced_at"))
    assert (stats["checked_from"], stats["checked_to"]) == (checked[0], checked[-1])


def test_changing_a_rule_re_evaluates_the_whole_ledger_at_once(api, running):
    ledger = new_ledger(api, "规则测试单位")
    p = known_person(api, "吕规", last_test_sampled_at=ago(40))
    join(api, ledger["token"], p)
    wait_until(lambda: members(api, ledger)["items"] and members(api, ledger)["items"][0]["synced_at"], what="check")
    assert members(api, ledger)["items"][0]["abnormal"] is False  # 72 h rule
    bad = api.http.put(api.base_url + f"/api/ledgers/{ledger['id']}/rules", json={"max_test_age_hours": 36},
                       headers={"Authorization": f"Bearer {ledger['admin_token']}"}, timeout=10)
    assert bad.status_code == 400 and "max_test_age_hours" in bad.json()["error"]["details"]["fields"]
    changed = api.http.put(api.base_url + f"/api/ledgers/{ledger['id']}/rules",
                           json={"max_test_age_hours": 24, "min_vaccination": "booster"},
                           headers={"Authorization": f"Bearer {ledger['admin_token']}"}, timeout=10)
    assert changed.status_code == 200, changed.text
    assert "24小时内核酸阴性" in changed.json()["rule_labels"]
    row = wait_until(lambda: (m := members(api, ledger)["items"][0])["abnormal"] and m, what="re-evaluation")
    assert {r["code"] for r in row["abnormal_reasons"]} == {"test_too_old"}
    assert api.get(f"/api/ledgers/{ledger['id']}/rules", token=ledger["admin_token"]).json()["rules"]["max_test_age_hours"] == 24


def test_exports_are_masked_with_a_header_and_recorded(api, office):
    response = api.get(f"/api/ledgers/{office['id']}/export.xlsx", token=office["admin_token"], params={"abnormal": "true"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][0] == "团体簿：星光科技有限公司"
    assert rows[1][0].startswith("导出时间：") and rows[2][0].startswith("数据时间：")
    assert rows[3][0] == "筛选：只看异常；共 4 人"  # in the page's words, not abnormal=True
    # Excel keeps the column headers in view, with its filter buttons on them
    assert sheet.freeze_panes == "A7" and sheet.auto_filter.ref == "A6:N10"
    # named after the ledger, in Beijing time (the ASCII name for clients without RFC 6266)
    disposition = response.headers["Content-Disposition"]
    beijing = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    assert f"filename*=UTF-8''{quote('星光科技有限公司-成员-' + beijing)}" in disposition, disposition
    assert re.search(rf'filename="ledger-[0-9a-f]{{8}}-{beijing}-\d{{4}}\.xlsx"', disposition), disposition
    header = rows[5]
    assert header[:4] == ("姓名", "证件类型", "证件号码", "手机号")
    data = {r[0]: r for r in rows[6:]}
    assert set(data) == {"白露", "陈红", "丁老", "范无"}
    p = office["people"]["陈红"]["person"]
    assert data["陈红"][2] == p.id_number[0] + "*" * 15 + p.id_number[-2:]
    assert data["陈红"][3] == p.phone[:3] + "****" + p.phone[-4:]
    assert data["陈红"][4] == "集中观察" and data["陈红"][9] == "是"
    assert p.id_number not in response.content.decode("latin-1") and p.phone not in str(rows)
    as_csv = api.get(f"/api/ledgers/{office['id']}/export.csv", token=office["admin_token"])
    assert as_csv.status_code == 200
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0][0] == "团体簿：星光科技有限公司" and len(lines) == 6 + 5
    log = api.get(f"/api/ledgers/{office['id']}/access-log", token=office["admin_token"]).json()["items"]
    views = [entry["view"] for entry in log]
    assert "export.xlsx" in views and "export.csv" in views
    xlsx = next(e for e in log if e["view"] == "export.xlsx")
    assert xlsx["filters"] == {"abnormal": True} and xlsx["admin_name"] == "欧***" and xlsx["role"] == "owner"


def test_members_see_who_viewed_their_ledger(api, office):
    members(api, office, code_status="red")
    mine = office["people"]["安然"]
    views = api.get(f"/api/me/memberships/{mine['id']}/views", token=mine["token"])
    assert views.status_code == 200
    assert views.json()["items"] and views.json()["items"][0]["admin_name"] == "欧***"
    assert "filters" not in views.json()["items"][0]
    other = office["people"]["白露"]
    assert api.get(f"/api/me/memberships/{mine['id']}/views", token=other["token"]).status_code == 404


def invite(api, ledger, person, token=None):
    before = api.sms_count(person.phone)
    body = {"name": person.name, "id_type": "resident_id", "id_number": person.id_number, "phone": person.phone}
    response = api.post(f"/api/ledgers/{ledger['id']}/admins", body, token=token or ledger["admin_token"])
    return response, before


def test_co_admins_are_verified_and_can_do_member_work_but_not_manage(api, running, office):
    deputy = known_person(api, "孔副")
    invited, before = invite(api, office, deputy)
    assert invited.status_code == 201, invited.text
    assert invited.json()["masked_phone"] == deputy.phone[:3] + "****" + deputy.phone[-4:]
    confirmed = confirm_latest(api, deputy.phone, invited.json()["challenge_id"], before)
    assert confirmed.status_code == 200 and confirmed.json()["admin_status"] == "active"
    deputy_token = confirmed.json()["token"]
    admins = api.get(f"/api/ledgers/{office['id']}/admins", token=office["admin_token"]).json()["items"]
    assert {(a["name"], a["role"], a["status"]) for a in admins} >= {("孔*", "co_admin", "active")}
    # member work
    wait_until(lambda: api.get(f"/api/ledgers/{office['id']}/members", token=deputy_token).status_code == 200,
               what="the co-admin to be known to member")
    assert members(api, office, token=deputy_token)["total"] >= 5
    wait_until(lambda: api.get(f"/api/ledgers/{office['id']}/stats", token=deputy_token).status_code == 200,
               what="the co-admin to be known to healthsync")
    assert api.get(f"/api/ledgers/{office['id']}/export.csv", token=deputy_token).status_code == 200
    # not management
    assert api.http.put(api.base_url + f"/api/ledgers/{office['id']}/rules", json={"popup_is_abnormal": False},
                        headers={"Authorization": f"Bearer {deputy_token}"}, timeout=10).status_code == 403
    stranger = known_person(api)
    assert invite(api, office, stranger, token=deputy_token)[0].status_code == 403
    assert api.post(f"/api/ledgers/{office['id']}/close", token=deputy_token).status_code == 403
    assert api.get(f"/api/ledgers/{office['id']}/access-log", token=deputy_token).status_code == 403
    # nothing in another ledger
    # (403, or 404 from a service that has not yet heard of the new ledger)
    other = new_ledger(api, "别家单位")
    assert api.get(f"/api/ledgers/{other['id']}/members", token=deputy_token).status_code in (403, 404)
    assert api.get(f"/api/ledgers/{other['id']}/stats", token=deputy_token).status_code in (403, 404)
    assert api.get(f"/api/ledgers/{other['id']}/export.xlsx", token=deputy_token).status_code in (403, 404)
    assert api.post(f"/api/ledgers/{other['id']}/reminders", {}, token=deputy_token).status_code in (403, 404)
    # the owner removes the co-admin: access ends
    deputy_admin = next(a for a in admins if a["name"] == "孔*")
    assert delete(api, f"/api/ledgers/{office['id']}/admins/{deputy_admin['admin_id']}", office["admin_token"]).status_code == 200
    wait_until(lambda: api.get(f"/api/ledgers/{office['id']}/members", token=deputy_token).status_code == 403,
               what="access to end")
    # and, belonging to no ledger now, their phone goes from verify
    deputy_ref = Crypto(load_settings(running.env)).person_ref("resident_id", deputy.id_number)
    wait_until(lambda: not sql(running, "SELECT 1 FROM verify.identities WHERE person_ref = %s", deputy_ref),
               what="verify to forget the removed co-admin's phone")


def test_a_co_admin_whose_phone_does_not_match_is_refused(api, office):
    impostor = known_person(api, "假冒")
    body = {"name": impostor.name, "id_type": "resident_id", "id_number": impostor.id_number, "phone": known_person(api).phone}
    refused = api.post(f"/api/ledgers/{office['id']}/admins", body, token=office["admin_token"])
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "phone"


def test_at_most_five_co_admins(api, running):
    ledger = new_ledger(api, "五人单位")
    for _ in range(5):
        response, _ = invite(api, ledger, known_person(api))
        assert response.status_code == 201
    sixth, _ = invite(api, ledger, known_person(api))
    assert sixth.status_code == 409 and sixth.json()["error"]["details"]["reason"] == "too_many_admins"


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def test_the_access_log_pages_through_everything_and_tells_same_surname_admins_apart(api, running):
    ledger = new_ledger(api, "查看记录单位")
    membership_id, member_token = join(api, ledger["token"], known_person(api, "闻成员"))
    members(api, ledger)  # the owner views once too
    zhang_wei = known_person(api, "张伟")
    zhang_qiang = known_person(api, "张强")
    while masked(zhang_qiang.phone) == masked(zhang_wei.phone):  # (one chance in 400,000)
        zhang_qiang = known_person(api, "张强")
    tokens = {}
    for p in (zhang_wei, zhang_qiang):
        invited, before = invite(api, ledger, p)
        assert invited.status_code == 201, invited.text
        tokens[p.name] = confirm_latest(api, p.phone, invited.json()["challenge_id"], before).json()["token"]
        wait_until(lambda token=tokens[p.name]: api.get(f"/api/ledgers/{ledger['id']}/members", token=token).status_code == 200,
                   what=f"{p.name} to be known to member")
    for _ in range(30):  # each co-admin views the list: more than a page of entries
        for token in tokens.values():
            members(api, ledger, token=token)
    log_url = f"/api/ledgers/{ledger['id']}/access-log"

    def log(token=ledger["admin_token"], **params):
        response = api.get(log_url, token=token, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    # every entry is reachable a page at a time, newest first, and total counts them all
    total = log(page_size=1)["total"]
    kept = sql(running, "SELECT count(*) FROM member.access_log WHERE ledger_id = %s", ledger["id"])[0][0]
    assert total == kept and total >= 62
    entries, page = [], 1
    while len(entries) < total:
        body = log(page=page, page_size=25)
        assert body["total"] == total and body["page"] == page and body["page_size"] == 25
        assert len(body["items"]) == min(25, total - len(entries))
        entries += body["items"]
        page += 1
    assert log(page=page, page_size=25)["items"] == []
    assert len({e["id"] for e in entries}) == total
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert times == sorted(times, reverse=True)
    default = log()  # 50 a page unless asked
    assert default["page_size"] == 50 and len(default["items"]) == 50 and default["items"] == entries[:50]
    assert log(page=2, limit=1000)["items"] == entries[50:100]
    members(api, ledger, token=tokens["张伟"])  # one more view: one more entry, the newest
    newest = log(page_size=1)
    assert newest["total"] == total + 1 and newest["items"][0]["view"] == "members"

    # who: the admin as the admins list shows them, so 张伟 and 张强 (both 张*) differ
    admins = api.get(f"/api/ledgers/{ledger['id']}/admins", token=ledger["admin_token"]).json()["items"]
    listed = {a["admin_id"]: (a["name"], a["phone"], a["role"]) for a in admins}
    assert len(listed) == 3
    assert {(e["admin_id"], e["admin_name"], e["admin_phone"], e["role"]) for e in entries} == {
        (admin_id, *shown) for admin_id, shown in listed.items()
    }
    who = {e["admin_id"]: (e["admin_name"], e["admin_phone"], e["role"]) for e in entries}
    by_phone = {phone: admin_id for admin_id, (_, phone, _) in who.items()}
    assert who[by_phone[masked(zhang_wei.phone)]] == ("张*", masked(zhang_wei.phone), "co_admin")
    assert who[by_phone[masked(zhang_qiang.phone)]] == ("张*", masked(zhang_qiang.phone), "co_admin")
    assert by_phone[masked(zhang_wei.phone)] != by_phone[masked(zhang_qiang.phone)]
    assert newest["items"][0]["admin_id"] == by_phone[masked(zhang_wei.phone)]
    assert sum(e["admin_id"] == by_phone[masked(zhang_qiang.phone)] for e in entries) >= 31
    text = api.get(log_url, token=ledger["admin_token"], params={"page_size": 200}).text
    for p in (ledger["owner"], zhang_wei, zhang_qiang):
        assert p.phone not in text and p.id_number not in text

    # a bad page or page size is refused, naming it
    for params, field in [({"page_size": "201"}, "page_size"), ({"page_size": "0"}, "page_size"),
                          ({"page_size": "all"}, "page_size"), ({"page": "0"}, "page")]:
        refused = api.get(log_url, token=ledger["admin_token"], params=params)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_input" and error["field"] == field and field in error["details"]["fields"]

    # the member sees the same entries since joining, the admins by masked name and role
    # (told apart by their id), and no phone or filters
    views_url = f"/api/me/memberships/{membership_id}/views"
    mine = api.get(views_url, token=member_token, params={"page_size": 200}).json()
    assert mine["total"] == total + 1 and len(mine["items"]) == total + 1
    assert [v["id"] for v in mine["items"]] == [newest["items"][0]["id"]] + [e["id"] for e in entries]
    seen = {v["admin_id"]: (v["admin_name"], v["role"]) for v in mine["items"]}
    assert seen == {admin_id: (name, role) for admin_id, (name, _, role) in listed.items()}
    assert all("admin_phone" not in v and "filters" not in v for v in mine["items"])
    second = api.get(views_url, token=member_token, params={"page": 2, "page_size": 10}).json()
    assert second["items"] == mine["items"][10:20] and second["total"] == total + 1
    refused = api.get(views_url, token=member_token, params={"page_size": "1000"})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "page_size"


def test_ownership_moves_only_after_the_owner_reconfirms(api, running):
    ledger = new_ledger(api, "交接单位")
    deputy = known_person(api, "沈接")
    invited, before = invite(api, ledger, deputy)
    deputy_token = confirm_latest(api, deputy.phone, invited.json()["challenge_id"], before).json()["token"]
    deputy_id = next(a["admin_id"] for a in api.get(f"/api/ledgers/{ledger['id']}/admins", token=ledger["admin_token"]).json()["items"] if a["role"] == "co_admin")
    before = api.sms_count(ledger["owner"].phone)
    started = api.post(f"/api/ledgers/{ledger['id']}/owner", {"admin_id": deputy_id}, token=ledger["admin_token"])
    assert started.status_code == 201, started.text
    # not yet: the owner has not confirmed
    assert api.get(f"/api/ledgers/{ledger['id']}", token=deputy_token).json()["my_role"] == "co_admin"
    # the code's SMS says what it confirms: someone asked to read it out can tell
    sms = api.get("/api/dev/sms", params={"phone": ledger["owner"].phone}).json()["items"][0]["text"]
    assert "用于把团体簿「交接单位」的所有权转让给其他管理员" in sms, sms
    done = confirm_latest(api, ledger["owner"].phone, started.json()["challenge_id"], before)
    assert done.status_code == 200 and done.json().get("owner_changed") is True
    assert api.get(f"/api/ledgers/{ledger['id']}", token=deputy_token).json()["my_role"] == "owner"
    assert api.get(f"/api/ledgers/{ledger['id']}", token=ledger["admin_token"]).json()["my_role"] == "co_admin"
    assert api.http.put(api.base_url + f"/api/ledgers/{ledger['id']}/rules", json={"popup_is_abnormal": False},
                        headers={"Authorization": f"Bearer {ledger['admin_token']}"}, timeout=10).status_code == 403


def test_alerts_when_a_member_becomes_abnormal_and_back(api, running):
    ledger = new_ledger(api, "告警单位")
    p = known_person(api, "邹警")
    membership_id, member_token = join(api, ledger["token"], p)
    wait_until(lambda: members(api, ledger)["items"][0]["synced_at"], what="check")
    api.put_resident(p.id_number, code_status="red")
    api.post(f"/api/me/memberships/{membership_id}/recheck", token=member_token)
    alerts = wait_until(
        lambda: (a := api.get(f"/api/ledgers/{ledger['id']}/alerts", token=ledger["admin_token"]).json())["items"] and a,
        what="an alert",
    )
    alert = alerts["items"][0]
    assert alert["kind"] == "became_abnormal" and alert["name"] == "邹警" and alert["read"] is False
    assert [r["code"] for r in alert["reasons"]] == ["code_not_green"]
    assert alerts["unread"] == 1
    marked = api.post(f"/api/ledgers/{ledger['id']}/alerts/read", {}, token=ledger["admin_token"])
    assert marked.json()["marked"] == 1
    assert api.get(f"/api/ledgers/{ledger['id']}/alerts", token=ledger["admin_token"]).json()["unread"] == 0
    api.put_resident(p.id_number, code_status="green")
    # within the re-check limit of the member's re-check, so refused: the Health Kit's
    # change feed brings the change
    assert api.post(f"/api/ledgers/{ledger['id']}/members/{membership_id}/refresh",
                    token=ledger["admin_token"]).status_code == 429
    again = wait_until(
        lambda: (a := api.get(f"/api/ledgers/{ledger['id']}/alerts", token=ledger["admin_token"]).json())["unread"] and a,
        what="the back-to-normal alert",
    )
    assert again["items"][0]["kind"] == "back_to_normal"


def test_the_daily_digest_is_sent_once(api, running):
    ledger = new_ledger(api, "摘要单位")
    p = known_person(api, "简摘")
    membership_id, member_token = join(api, ledger["token"], p)
    wait_until(lambda: members(api, ledger)["items"][0]["synced_at"], what="check")
    optin = api.http.put(api.base_url + f"/api/ledgers/{ledger['id']}/alerts/digest", json={"enabled": True},
                         headers={"Authorization": f"Bearer {ledger['admin_token']}"}, timeout=10)
    assert optin.status_code == 200
    before = api.sms_count(ledger["owner"].phone)
    api.put_resident(p.id_number, code_status="yellow")
    api.post(f"/api/me/memberships/{membership_id}/recheck", token=member_token)
    wait_until(lambda: api.sms_count(ledger["owner"].phone) == before + 1, what="the digest")
    digest = api.get("/api/dev/sms", params={"phone": ledger["owner"].phone}).json()["items"][0]["text"]
    assert "摘要单位" in digest and "1 条" in digest
    api.put_resident(p.id_number, code_status="green")  # the change feed brings it
    wait_until(lambda: api.get(f"/api/ledgers/{ledger['id']}/alerts", token=ledger["admin_token"]).json()["unread"] == 2,
               what="a second alert")
    import time
    time.sleep(3)
    assert api.sms_count(ledger["owner"].phone) == before + 1  # one a day at most


def test_reminders_reach_abnormal_members_once_a_day(api, running, office):
    sent_before = {n: api.sms_count(v["person"].phone) for n, v in office["people"].items()}
    response = api.post(f"/api/ledgers/{office['id']}/reminders", {}, token=office["admin_token"])
    assert response.status_code == 200, response.text
    assert response.json()["sent"] == 4
    for name, info in office["people"].items():
        expected = 0 if name == "安然" else 1
        assert api.sms_count(info["person"].phone) == sent_before[name] + expected
    text = api.get("/api/dev/sms", params={"phone": office["people"]["陈红"]["person"].phone}).json()["items"][0]["text"]
    assert "星光科技有限公司" in text and "健康码非绿码" in text
    again = api.post(f"/api/ledgers/{office['id']}/reminders", {}, token=office["admin_token"]).json()
    assert again["sent"] == 0 and again["skipped_already_today"] == 4
    log = api.get(f"/api/ledgers/{office['id']}/access-log", token=office["admin_token"]).json()["items"]
    assert any(entry["view"] == "reminders" for entry in log)


def test_closing_destroys_readability_everywhere(api, running):
    ledger = new_ledger(api, "关闭单位")
    p = known_person(api, "闭人")
    membership_id, member_token = join(api, ledger["token"], p)
    wait_until(lambda: members(api, ledger)["items"][0]["synced_at"], what="check")
    ciphertext = bytes(sql(running, "SELECT name_enc FROM member.memberships WHERE id = %s", membership_id)[0][0])
    wrapped = bytes(sql(running, "SELECT wrapped_key FROM member.ledger_keys WHERE ledger_id = %s", ledger["id"])[0][0])
    c = crypto()
    data_key = c.unwrap_data_key(f"member-ledger:{ledger['id']}", wrapped)
    assert c.data_cipher(data_key).decrypt_text(ciphertext) == "闭人"  # readable while open

    before = api.sms_count(ledger["owner"].phone)
    close = api.post(f"/api/ledgers/{ledger['id']}/close", token=ledger["admin_token"])
    closed = confirm_latest(api, ledger["owner"].phone, close.json()["challenge_id"], before)
    assert closed.json()["ledger_status"] == "closed"
    wait_until(lambda: sql(running, "SELECT count(*) FROM member.ledger_keys WHERE ledger_id = %s", ledger["id"])[0][0] == 0,
               what="the member data key to be destroyed")
    # the ciphertext may linger (in backups too); without the key nobody can read it
    still = sql(running, "SELECT name_enc FROM member.memberships WHERE id = %s", membership_id)
    for key in [c.master]:
        with pytest.raises(DecryptionError):
            key.decrypt(bytes(still[0][0]))
    assert sql(running, "SELECT count(*) FROM org.ledger_keys WHERE ledger_id = %s", ledger["id"])[0][0] == 0
    # healthsync forgets people in no open ledger
    wait_until(lambda: sql(running, "SELECT count(*) FROM healthsync.members WHERE ledger_id = %s", ledger["id"])[0][0] == 0,
               what="healthsync to drop the ledger")
    assert [m["ledger_status"] for m in api.get("/api/me/memberships", token=member_token).json()["items"]] == ["closed"]


#: what an admin asks of a ledger: its data from member and healthsync (alone or
#: together) and org, and acts on it
CLOSED_ASKS = [
    ("GET", "stats"), ("GET", "members"), ("GET", "members?status=all"), ("GET", "members?abnormal=true"),
    ("GET", "members?q=闭"), ("GET", "export.xlsx"), ("GET", "export.csv"), ("GET", "alerts"),
    ("GET", "sync"), ("POST", "sync"), ("POST", "reminders"), ("GET", "admins"),
    ("PUT", "rules"), ("GET", "join-link"), ("POST", "qr/rotate"), ("POST", "close"),
]


def test_a_closed_ledgers_admins_are_told_it_closed_and_nobody_else_is(api, running):
    ledger = new_ledger(api, "关闭后单位")
    other = new_ledger(api, "别家单位")
    join(api, ledger["token"], known_person(api, "闭后人"))
    wait_until(lambda: members(api, ledger)["items"][0]["synced_at"], what="check")
    before = api.sms_count(ledger["owner"].phone)
    close = api.post(f"/api/ledgers/{ledger['id']}/close", token=ledger["admin_token"])
    assert confirm_latest(api, ledger["owner"].phone, close.json()["challenge_id"], before).json()["ledger_status"] == "closed"
    shown = api.get(f"/api/ledgers/{ledger['id']}", token=ledger["admin_token"]).json()
    assert shown["status"] == "closed"
    day = datetime.fromisoformat(shown["closed_at"]).astimezone(timezone(timedelta(hours=8))).date().isoformat()

    def ask(method, path, token):
        url = f"/api/ledgers/{ledger['id']}/{path}"
        if method == "PUT":
            return api.http.put(api.base_url + url, json={"popup_is_abnormal": False},
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        return api.get(url, token=token) if method == "GET" else api.post(url, {}, token=token)

    # every service hears of the closing by its event
    wait_until(lambda: all(ask(m, p, ledger["admin_token"]).status_code == 410 for m, p in CLOSED_ASKS),
               what="every read of the closed ledger to say so")
    for method, path in CLOSED_ASKS:
        answer = ask(method, path, ledger["admin_token"])
        error = answer.json()["error"]
        assert (answer.status_code, error["code"]) == (410, "ledger_closed"), (path, answer.text)
        assert error["message"] == f"This ledger was closed on {day}; its members' data was destroyed.", path
        assert error["details"]["closed_at"][:10] == shown["closed_at"][:10], path
    # someone who was never its admin learns nothing: refused as for any ledger not theirs
    for method, path in CLOSED_ASKS:
        answer = ask(method, path, other["admin_token"])
        assert answer.status_code in (403, 404), (path, answer.text)
        assert "closed" not in answer.text, path
    # the ledger itself and its access log (who viewed, before) still answer its owner;
    # the refused reads were not recorded as views
    log = api.get(f"/api/ledgers/{ledger['id']}/access-log", token=ledger["admin_token"])
    assert log.status_code == 200, log.text
    assert not [e for e in log.json()["items"] if e["at"] > shown["closed_at"]]


def test_a_time_limited_ledger_closes_itself_after_its_last_day(api, running):
    owner = known_person(api, "展会方")
    today = datetime.now(timezone(timedelta(hours=8))).date()
    past = api.post("/api/ledgers", {"org_name": "展会", "org_address": "会展中心", "admin_name": owner.name,
                                     "admin_id_type": "resident_id", "admin_id_number": owner.id_number,
                                     "admin_phone": owner.phone, "ends_on": (today - timedelta(days=1)).isoformat()})
    assert past.status_code == 400 and past.json()["error"]["field"] == "ends_on"
    ledger_id, token = create_active_ledger(api, owner, org_name="展会", ends_on=today.isoformat())
    assert api.get(f"/api/ledgers/{ledger_id}", token=token).json()["ends_on"] == today.isoformat()
    sql(running, "UPDATE org.ledgers SET ends_on = %s WHERE id = %s", today - timedelta(days=1), ledger_id)  # a day passes
    wait_until(lambda: api.get(f"/api/ledgers/{ledger_id}", token=token).json()["status"] == "closed", what="self-closing")


def test_run_history_is_kept_a_limited_number_of_days(api, running):
    from nameko.standalone.rpc import ClusterRpcProxy

    ledger_id, admin_token = create_active_ledger(api, known_person(api, "历史"))
    join(api, join_token(api, ledger_id, admin_token), known_person(api, "历史成员"))
    wait_until(lambda: sql(running, "SELECT count(*) FROM healthsync.members WHERE ledger_id = %s", ledger_id)[0][0],
               what="healthsync to know the member")
    with ClusterRpcProxy({"AMQP_URI": running.env["AMQP_URI"]}, timeout=30) as rpc:
        run = rpc.healthsync.run_now(None)
        wait_until(lambda: rpc.healthsync.run_status(run["run_id"])["status"] == "finished", what="run")
    assigned = "SELECT count(*) FROM healthsync.run_ledgers WHERE run_id = %s AND assigned IS NOT NULL"
    assert sql(running, assigned, run["run_id"])[0][0] > 0
    sql(running, "UPDATE healthsync.runs SET finished_at = now() - interval '25 hours' WHERE id = %s", run["run_id"])
    # who was given to which ledger's work goes after a day; the run and its ledgers stay
    wait_until(lambda: sql(running, assigned, run["run_id"])[0][0] == 0, what="the run's lists of people to be forgotten")
    assert sql(running, "SELECT count(*) FROM healthsync.run_ledgers WHERE run_id = %s", run["run_id"])[0][0] > 0
    with ClusterRpcProxy({"AMQP_URI": running.env["AMQP_URI"]}, timeout=30) as rpc:
        assert rpc.healthsync.run_status(run["run_id"])["people_compared"] > 0  # counted from its ledgers
    sql(running, "UPDATE healthsync.runs SET finished_at = now() - interval '31 days' WHERE id = %s", run["run_id"])
    wait_until(lambda: sql(running, "SELECT count(*) FROM healthsync.runs WHERE id = %s", run["run_id"])[0][0] == 0,
               what="the old run to be forgotten")
    assert sql(running, "SELECT count(*) FROM healthsync.run_ledgers WHERE run_id = %s", run["run_id"])[0][0] == 0
