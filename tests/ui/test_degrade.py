"""The pages when parts of the system are missing, slow or failing: each panel whose
endpoint answers 404 (an older gateway) says so in a short notice and the rest of the
page works; the dev SMS outbox switched off (production); a verification the gateway
could not finish waiting for (202 pending), which the page then polls; a Health Kit
that cannot be reached, whose last good data is shown with its time."""

from __future__ import annotations

import json
import re

import requests

from tests.e2e.flows import create_active_ledger, join_token, known_person
from tests.e2e.flows import join as api_join
from tests.ui.conftest import shot, wait_for

MISSING = json.dumps({"error": {"code": "not_found", "message": "No such API endpoint."}})
PANELS = re.compile(r"/api/(ledgers/[^/]+/(stats|alerts|rules|admins|access-log|export\.(xlsx|csv)|reminders)"
                    r"|me/memberships/[^/]+/views)(\?.*)?$")


def missing(route):
    route.fulfill(status=404, content_type="application/json", body=MISSING)


def test_panels_degrade_to_a_notice_when_their_endpoint_is_missing(browsing, client):
    admin = known_person(client, "褚老师")
    ledger_id, token = create_active_ledger(client, admin, org_name="通州区文化馆")
    page = browsing.page()
    page.route(PANELS, missing)
    page.goto("/")
    page.evaluate("t => localStorage.setItem('tuantibu.token', t)", token)
    page.goto(f"/ledger/{ledger_id}")
    page.get_by_text("统计功能暂未开放").wait_for()
    assert page.get_by_role("button", name="立即比对").is_visible()  # the rest works
    page.get_by_role("button", name="导出 Excel").click()
    page.get_by_text("导出功能暂未开放").wait_for()
    assert not page.locator(".tab .badge").is_visible()

    page.get_by_role("tab", name="预警").click()
    page.get_by_text("预警功能暂未开放").wait_for()
    page.get_by_role("tab", name="设置").click()
    page.get_by_text("异常规则功能暂未开放").wait_for()
    page.get_by_text("管理员管理功能暂未开放").wait_for()
    page.get_by_text("查看记录功能暂未开放").wait_for()
    # the admins listed with the ledger are still shown
    assert "褚*" in page.locator(".admins-card").inner_text()
    shot(page, "40-ledger-endpoints-missing")


def test_dev_outbox_off_says_so_and_hides_the_demo_link(browsing, client):
    page = browsing.page()
    page.route(re.compile(r"/api/dev/sms(\?.*)?$"), missing)
    page.goto("/dev/sms")
    page.get_by_text("演示短信箱未开启").wait_for()
    shot(page, "41-dev-sms-off")

    p = known_person(client, "韩老师")
    page.goto("/create")
    page.get_by_label("机构名称").fill("昌平区卫生院")
    page.get_by_label("机构地址").fill("北京市昌平区健康路3号")
    page.get_by_label("管理员姓名").fill(p.name)
    page.get_by_label("管理员证件号码").fill(p.id_number)
    page.get_by_label("管理员手机号").fill(p.phone)
    page.get_by_role("button", name="下一步：获取验证码").click()
    page.get_by_text("验证码已发送至").wait_for()
    page.locator(".dev-sms-link[data-checked]").wait_for(state="attached")
    assert not page.get_by_role("link", name="查看短信(演示)").is_visible()


def test_a_pending_verification_is_polled_until_the_code_is_sent(browsing, client):
    admin = known_person(client, "杨老师")
    ledger_id, token = create_active_ledger(client, admin, org_name="顺义区少年宫")
    joiner = known_person(client, "秦雪")
    page = browsing.page()
    polls = []

    def pending(route):
        # the gateway gave up waiting for verify: 202 and status "pending"
        response = route.fetch()
        body = response.json()
        body.update(status="pending")
        body.pop("masked_phone", None)
        route.fulfill(status=202, content_type="application/json", body=json.dumps(body))

    def not_yet_recorded(route):
        # verify records a challenge once the Health Kit has answered; a slow Health Kit
        # means a few polls find no such challenge yet
        polls.append(route.request.url)
        if len(polls) <= 2:
            route.fulfill(status=404, content_type="application/json", body=json.dumps(
                {"error": {"code": "not_found", "message": "No such verification."}}))
        else:
            route.continue_()

    page.route(re.compile(r"/api/join/[^/?]+$"), lambda route: pending(route) if route.request.method == "POST" else route.continue_())
    page.route(re.compile(r"/api/challenges/[^/?]+$"),
               lambda route: not_yet_recorded(route) if route.request.method == "GET" else route.continue_())
    page.goto(f"/join/{join_token(client, ledger_id, token)}")
    page.get_by_label("姓名", exact=True).fill(joiner.name)
    page.get_by_label("证件号码").fill(joiner.id_number)
    page.get_by_label("手机号").fill(joiner.phone)
    page.get_by_label("我已阅读并同意以上内容，自愿加入").check()
    before = client.sms_count(joiner.phone)
    page.get_by_role("button", name="下一步：获取验证码").click()
    page.get_by_text(f"验证码已发送至 {joiner.phone[:3]}****{joiner.phone[-4:]}").wait_for()
    assert len(polls) >= 3, "the page did not keep polling the challenge"
    page.get_by_label("验证码").fill(client.latest_code(joiner.phone, after=before))
    page.get_by_role("button", name="确认加入").click()
    page.get_by_role("heading", name="已加入").wait_for()
    wait_for(lambda: page.evaluate("localStorage.getItem('tuantibu.token')"), what="the session")


def test_a_failed_comparison_shows_stale_data_with_its_time(browsing, client, stack):
    admin = known_person(client, "尤老师")
    ledger_id, token = create_active_ledger(client, admin, org_name="密云区水库站")
    joiner = known_person(client, "施然")
    api_join(client, join_token(client, ledger_id, token), joiner)
    page = browsing.page()
    page.goto("/")
    page.evaluate("t => localStorage.setItem('tuantibu.token', t)", token)
    page.goto(f"/ledger/{ledger_id}")

    def checked():
        if "尚未比对" in page.locator(".member-list").inner_text():
            page.reload()
            return False
        return page.locator("article.member").count() == 1

    wait_for(checked, what="the first check")
    requests.put(stack.healthkit_url + "/switches", json={"failure_rate": 1.0}, timeout=5).raise_for_status()
    try:
        page.get_by_role("button", name="立即比对").click()
        page.get_by_text("比对未全部完成").wait_for(timeout=60_000)
    finally:
        requests.put(stack.healthkit_url + "/switches", json={"failure_rate": 0.0}, timeout=5).raise_for_status()
    stale = page.locator("article.member .stale")
    stale.wait_for()
    assert re.match(r"数据截至 \d{4}-\d\d-\d\d \d\d:\d\d", stale.inner_text())
    shot(page, "44-ledger-stale-data")
