"""Co-admins on the settings tab: the owner hands ownership over (re-confirmed by the
owner's SMS code) and becomes a plain admin; removing a co-admin. A full ledger: its
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
    return co


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
