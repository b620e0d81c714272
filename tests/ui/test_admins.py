"""Co-admins on the settings tab: the owner hands ownership over (re-confirmed by the
owner's SMS code) and becomes a plain admin; removing a co-admin. The access log: every
entry a page at a time, each admin as the admins list shows them. A full ledger: its
admins are told, and who can raise the cap."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from shared.stack import ROOT
from tests.e2e.flows import create_active_ledger, join_token, known_person
from tests.e2e.flows import join as api_join
from tests.ui.conftest import shot, wait_for


def add_co_admin(client, ledger_id: str, token: str, name: str):
    co = known_person(client, name)
    before = client.sms_count(co.phone)
    invited = client.post(f"/api/ledgers/{ledger_id}/admins",
                          {"name": co.name, "id_type": "resident_id", "id_number": co.id_number, "phone": co.phone},
                          token=token)
    assert invited.status_code in (201, 202), invited.text
    code = client.latest_code(co.phone, after=before)
    confirmed = client.post(f"/api/challenges/{invited.json()['challenge_id']}/confirm", {"code": code})
    assert confirmed.status_code == 200, confirmed.text
    return co, confirmed.json()["token"]


def test_owner_transfers_ownership_and_removes_a_co_admin(browsing, client):
    owner = known_person(client, "蔡老师")
    ledger_id, token = create_active_ledger(client, owner, org_name="怀柔区青少年宫")
    add_co_admin(client, ledger_id, token, "许助理")
    add_co_admin(client, ledger_id, token, "何助理")

    page = browsing.page()
    page.goto("/")
    page.evaluate("t => localStorage.setItem('tuantibu.token', t)", token)
    page.goto(f"/ledger/{ledger_id}#settings")
    admins = page.locator(".admins-card")
    wait_for(lambda: admins.locator(".admin-row").count() == 3, what="three admins")

    # remove one co-admin
    row = admins.locator(".admin-row", has_text="何*")
    row.get_by_role("button", name="移除").click()
    page.get_by_role("dialog").get_by_role("button", name="移除").click()
    admins.get_by_text("已移除管理员").wait_for()
    wait_for(lambda: "何*" not in admins.locator(".admin-list").inner_text(), what="the co-admin to go")

    # hand ownership to the other one: the code goes to the owner's own phone
    before = client.sms_count(owner.phone)
    admins.locator(".admin-row", has_text="许*").get_by_role("button", name="转让所有权").click()
    page.get_by_role("dialog").get_by_role("button", name="继续").click()
    admins.get_by_text(re.compile(r"验证码已发送至 您的手机 \d{3}\*{4}\d{4}")).wait_for()
    shot(page, "42-transfer-ownership-code")
    admins.get_by_label("验证码").fill(client.latest_code(owner.phone, after=before))
    admins.get_by_role("button", name="确认转让").click()
    page.locator(".ledger-head", has_text="我是管理员").wait_for()
    rules = page.locator(".rules-card")
    rules.get_by_text("仅团体簿所有者可以修改规则").wait_for()
    assert rules.get_by_label("核酸检测时效").is_disabled()
    assert page.get_by_role("button", name="关闭团体簿").count() == 0
    shot(page, "43-after-transfer")


def test_the_owner_reads_the_whole_access_log_and_tells_two_zhangs_apart(browsing, client):
    owner = known_person(client, "钱老师")
    ledger_id, token = create_active_ledger(client, owner, org_name="西城区少年宫")
    membership_id, member_token = api_join(client, join_token(client, ledger_id, token), known_person(client, "陶成员"))
    added = [add_co_admin(client, ledger_id, token, name) for name in ("张伟", "张强")]
    zhangs = [co for co, _ in added]
    members_url = f"/api/ledgers/{ledger_id}/members"
    for co, co_token in added:
        wait_for(lambda t=co_token: client.get(members_url, token=t).status_code == 200,
                 what=f"{co.name} to be known to member")
        for _ in range(12):  # more than the page's 20 entries between them
            assert client.get(members_url, token=co_token).status_code == 200
    total = client.get(f"/api/ledgers/{ledger_id}/access-log", token=token).json()["total"]
    assert total >= 26
    masked = {co.name: f"{co.phone[:3]}****{co.phone[-4:]}" for co in zhangs}

    page = browsing.page()
    page.goto("/")
    page.evaluate("t => localStorage.setItem('tuantibu.token', t)", token)
    page.goto(f"/ledger/{ledger_id}#settings")
    log = page.locator(".access-card")
    log.locator(".log-list li").first.wait_for()
    assert f"共 {total} 条" in log.locator(".list-count").inner_text()
    assert log.locator(".log-list li").count() == 20
    more = log.get_by_role("button", name=f"查看更多（还有 {total - 20} 条）")
    more.click()
    wait_for(lambda: log.locator(".log-list li").count() == total, what="the next page of the log")
    assert not more.is_visible()

    # both show as 张*, told apart by the masked phone the admins list shows for each
    admins = page.locator(".admins-card")
    wait_for(lambda: admins.locator(".admin-row").count() == 3, what="three admins")
    for co in zhangs:
        row = admins.locator(".admin-row", has_text=masked[co.name])
        assert "张*" in row.inner_text() and "管理员" in row.inner_text()
        entries = log.locator(".log-list li", has_text=masked[co.name])
        assert entries.count() >= 13
        assert {e.get_attribute("data-admin-id") for e in entries.all()} == {row.get_attribute("data-admin-id")}
        assert "张*" in entries.first.inner_text() and "管理员" in entries.first.inner_text()
    page_text = page.locator("body").inner_text()
    assert all(co.phone not in page_text for co in zhangs)
    log.scroll_into_view_if_needed()
    shot(page, "46-access-log-two-zhangs")

    # the member sees the same entries: 张* with the role, no phone
    me = browsing.page()
    me.goto("/")
    me.evaluate("t => localStorage.setItem('tuantibu.token', t)", member_token)
    me.goto("/me")
    card = me.locator("article.membership", has_text="西城区少年宫")
    card.get_by_role("button", name="谁查看了我的数据").click()
    views = card.locator(".view-log li")
    views.first.wait_for()
    assert views.count() == 20 and f"共 {total} 条" in card.locator(".list-count").inner_text()
    assert "张*" in views.first.inner_text() and "管理员" in views.first.inner_text()
    assert not any(masked[co.name] in card.inner_text() for co in zhangs)
    card.get_by_role("button", name=re.compile("查看更多")).click()
    wait_for(lambda: views.count() == total, what="the member's next page")
    assert len({v.get_attribute("data-admin-id") for v in views.all()}) == 2  # the two 张*
    shot(me, "47-me-who-viewed")


def test_the_admins_see_when_their_ledger_is_full(browsing, client, stack):
    if not hasattr(stack, "env"):
        pytest.skip("the operator's command needs the stack's own settings (not a stack you run)")
    owner = known_person(client, "孔老师")
    ledger_id, token = create_active_ledger(client, owner, org_name="海淀区图书馆")
    api_join(client, join_token(client, ledger_id, token), known_person(client, "严明"))
    page = browsing.page()
    page.goto("/")
    page.evaluate("t => localStorage.setItem('tuantibu.token', t)", token)
    page.goto(f"/ledger/{ledger_id}")
    page.locator(".stats .stat-num").first.wait_for()
    assert page.locator(".cap-notice").count() == 0  # far from the cap of 10,000: nothing to say

    operator = subprocess.run(
        [sys.executable, "-m", "services.org.cli", "set-member-cap", ledger_id, "1"],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60,
    )
    assert operator.returncode == 0, operator.stderr
    page.reload()

    def warned() -> bool:  # the member's first check may still be on its way to the stats
        page.locator(".stats .stat-num").first.wait_for()
        if page.locator(".cap-notice").count():
            return True
        page.reload()
        return False

    wait_for(warned, what="the full-ledger notice")
    text = page.locator(".cap-notice").inner_text()
    assert "成员已满（1 / 1 人）" in text and "联系系统管理员" in text
    shot(page, "45-ledger-full")
