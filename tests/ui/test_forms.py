"""The pages' error handling and the login page: inline validation in Chinese next to
the field (typed values kept), Health Kit rejections on the right field, a wrong SMS
code, an invalid QR link, logging in and landing where one came from."""

from __future__ import annotations

import re

from tests.e2e.flows import create_active_ledger, join_token, known_person
from tests.e2e.flows import join as api_join
from tests.people import person, resident_id
from tests.ui.conftest import shot, wait_for


def bad_check_digit(id_number: str) -> str:
    wrong = "0" if id_number[-1] != "0" else "1"
    return id_number[:17] + wrong


def newest_sms_id(client) -> int:
    """The id of the newest message in the dev outbox, to anyone (0: none yet)."""
    items = client.get("/api/dev/sms").json()["items"]
    return items[0]["id"] if items else 0


def error_of(page, field: str) -> str:
    return page.locator(f"[data-field={field}] .field-error").inner_text()


def test_create_form_shows_inline_errors_in_chinese_and_keeps_the_values(browsing, client):
    page = browsing.page()
    page.goto("/create")
    bad_id = bad_check_digit(resident_id())
    page.get_by_label("机构名称").fill("海淀区实验中学")
    page.get_by_label("管理员姓名").fill("钱老师")
    page.get_by_label("管理员证件号码").fill(bad_id)
    page.get_by_label("管理员手机号").fill("12345")
    before = newest_sms_id(client)
    page.get_by_role("button", name="下一步：获取验证码").click()

    assert "校验位不正确" in error_of(page, "admin_id_number")
    assert "11位中国大陆手机号" in error_of(page, "admin_phone")
    assert "请填写" in error_of(page, "org_address")
    assert page.get_by_label("管理员证件号码").get_attribute("aria-invalid") == "true"
    # nothing typed is lost, nothing was sent
    assert page.get_by_label("管理员证件号码").input_value() == bad_id
    assert page.get_by_label("管理员手机号").input_value() == "12345"
    assert page.get_by_label("机构名称").input_value() == "海淀区实验中学"
    assert newest_sms_id(client) == before
    shot(page, "30-create-validation-errors")

    # an error goes away as the field is corrected
    page.get_by_label("管理员手机号").fill("13800138000")
    page.get_by_label("管理员手机号").blur()
    assert not page.locator("[data-field=admin_phone] .field-error").is_visible()


def test_a_health_kit_rejection_is_shown_on_the_phone_field(browsing, client):
    admin = known_person(client, "周老师")
    page = browsing.page()
    page.goto("/create")
    page.get_by_label("机构名称").fill("东城区图书馆")
    page.get_by_label("机构地址").fill("北京市东城区书香路2号")
    page.get_by_label("管理员姓名").fill(admin.name)
    page.get_by_label("管理员证件号码").fill(admin.id_number)
    other_phone = person().phone
    page.get_by_label("管理员手机号").fill(other_phone)
    page.get_by_role("button", name="下一步：获取验证码").click()
    page.locator("[data-field=admin_phone] .field-error").wait_for()
    assert "不是健康宝中此证件登记的手机号" in error_of(page, "admin_phone")
    assert page.get_by_label("管理员手机号").input_value() == other_phone
    assert page.get_by_label("管理员证件号码").input_value() == admin.id_number
    assert page.get_by_role("button", name="下一步：获取验证码").is_enabled()
    shot(page, "31-create-identity-rejected")


def test_join_form_inline_errors(browsing, client):
    admin = known_person(client, "吴老师")
    ledger_id, admin_token = create_active_ledger(client, admin, org_name="西城区社区中心")
    token = join_token(client, ledger_id, admin_token)
    page = browsing.page()
    page.goto(f"/join/{token}")
    page.get_by_role("heading", name="西城区社区中心").wait_for()
    page.get_by_label("姓名", exact=True).fill("张3")
    page.get_by_label("证件类型").select_option("hk_macao_permit")
    page.get_by_label("证件号码").fill("X123")
    page.get_by_label("手机号").fill("1380013800a")
    page.get_by_role("button", name="下一步：获取验证码").click()
    assert "姓名只能包含" in error_of(page, "name")
    assert "港澳通行证号码" in error_of(page, "id_number")
    assert "手机号只能包含数字" in error_of(page, "phone")
    assert "请阅读并勾选同意" in error_of(page, "consent")
    assert page.get_by_label("证件号码").input_value() == "X123"
    shot(page, "32-join-validation-errors")

    # someone already in the ledger is told so, above the button, with the form kept
    member = known_person(client, "邓佳")
    api_join(client, token, member)
    page.get_by_label("姓名", exact=True).fill(member.name)
    page.get_by_label("证件类型").select_option("resident_id")
    page.get_by_label("证件号码").fill(member.id_number)
    page.get_by_label("手机号").fill(member.phone)
    page.get_by_label("我已阅读并同意以上内容，自愿加入").check()
    page.get_by_role("button", name="下一步：获取验证码").click()
    page.get_by_text("您已经是该团体簿的成员，无需重复加入").wait_for()
    assert page.get_by_label("证件号码").input_value() == member.id_number

    # numbers as a Chinese keyboard types them (full-width) or pasted in groups
    newcomer = known_person(client, "韦华")
    full_width = newcomer.phone.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    spaced = f"{newcomer.id_number[:6]} {newcomer.id_number[6:14]} {newcomer.id_number[14:]}"
    page.get_by_label("姓名", exact=True).fill(newcomer.name)
    page.get_by_label("证件号码").fill(spaced)
    page.get_by_label("手机号").fill(full_width)
    assert page.get_by_label("证件号码").input_value() == spaced  # not cut short
    page.get_by_role("button", name="下一步：获取验证码").click()
    page.get_by_text(f"验证码已发送至 {newcomer.phone[:3]}****{newcomer.phone[-4:]}").wait_for()


def test_wrong_code_then_login_lands_where_the_person_came_from(browsing, client):
    admin = known_person(client, "郑老师")
    ledger_id, _ = create_active_ledger(client, admin, org_name="丰台区养老院")
    page = browsing.page()
    page.goto(f"/ledger/{ledger_id}")  # no session yet: off to the login page
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("手机号").fill(admin.phone)
    shot(page, "33-login")
    before = client.sms_count(admin.phone)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_text(f"验证码已发送至 {admin.phone[:3]}****{admin.phone[-4:]}").wait_for()
    assert page.get_by_role("button", name=re.compile(r"重新发送 \(\d+s\)")).is_disabled()
    code = client.latest_code(admin.phone, after=before)
    wrong = "000000" if code != "000000" else "111111"
    page.get_by_label("验证码").fill(wrong)
    page.get_by_role("button", name="登录").click()
    page.locator("[data-field=code] .field-error").wait_for()
    assert "验证码不正确，还可以再试 4 次" in error_of(page, "code")
    assert page.get_by_label("验证码").input_value() == wrong
    shot(page, "34-login-wrong-code")

    page.get_by_label("验证码").fill(code)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(rf"/ledger/{ledger_id}"))
    page.get_by_role("heading", name="丰台区养老院").wait_for()

    page.goto("/me")
    page.get_by_role("link", name=re.compile("丰台区养老院")).wait_for()
    shot(page, "35-me-admin")
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.evaluate("localStorage.getItem('tuantibu.token')") is None


def test_an_invalid_qr_says_so(browsing):
    page = browsing.page()
    page.goto("/join/not-a-real-token")
    page.get_by_text("二维码无效或已更新，请向机构索取新的二维码").wait_for()
    assert page.locator("form").count() == 0
    shot(page, "36-join-invalid-qr")


def test_a_qr_rotated_while_the_form_was_open_says_so_on_submit(browsing, client):
    admin = known_person(client, "柏老师")
    ledger_id, admin_token = create_active_ledger(client, admin, org_name="丰台区图书馆")
    token = join_token(client, ledger_id, admin_token)
    joiner = known_person(client, "花蕾")
    page = browsing.page()
    page.goto(f"/join/{token}")
    page.get_by_text("您正在加入以下机构的团体簿").wait_for()
    assert client.post(f"/api/ledgers/{ledger_id}/qr/rotate", token=admin_token).status_code in (200, 201)
    page.get_by_label("姓名", exact=True).fill(joiner.name)
    page.get_by_label("证件号码").fill(joiner.id_number)
    page.get_by_label("手机号").fill(joiner.phone)
    page.get_by_label("我已阅读并同意以上内容，自愿加入").check()
    page.get_by_role("button", name="下一步：获取验证码").click()
    # as the page says when such a link is opened, not "not found, maybe deleted"
    page.locator(".form-error", has_text="二维码无效或已更新，请向机构索取新的二维码").wait_for()


def test_me_without_a_session_goes_to_login(browsing):
    page = browsing.page()
    page.goto("/me")
    page.wait_for_url(re.compile(r"/login\?next=%2Fme"))
    page.get_by_role("heading", name="登录").wait_for()


def test_home_and_desktop_ledger_view(browsing, client):
    page = browsing.page()
    page.goto("/")
    page.get_by_role("link", name="创建团体簿").wait_for()
    shot(page, "37-home")

    admin = known_person(client, "冯老师")
    ledger_id, token = create_active_ledger(client, admin, org_name="石景山区体育馆")
    joining = join_token(client, ledger_id, token)
    api_join(client, joining, known_person(client, "卫东"))
    api_join(client, joining, known_person(client, "蒋华", code_status="yellow", vaccination="primary"))
    api_join(client, joining, known_person(client, "沈悦", last_test_result="pending"))
    desk = browsing.page(desktop=True)
    desk.goto("/")
    desk.evaluate("t => localStorage.setItem('tuantibu.token', t)", token)
    desk.goto(f"/ledger/{ledger_id}")
    desk.get_by_role("heading", name="石景山区体育馆").wait_for()
    wait_for(lambda: desk.locator("article.member").count() == 3, what="three members")
    def checked():
        if "尚未比对" in desk.locator(".member-list").inner_text():
            desk.reload()
            return False
        return True

    wait_for(checked, what="the members' first check")
    desk.locator(".member-list[aria-busy=false]").wait_for()
    assert "居家观察" in desk.locator("article.member", has_text="蒋华").inner_text()
    shot(desk, "38-desktop-ledger")
    wait_for(lambda: desk.locator(".last-sync").inner_text() != "上次全体比对：…", what="the sync status")
    # checked on joining, though no comparison of the whole ledger has run: the page says so
    assert desk.locator(".data-time").inner_text().startswith("成员健康数据更新于")
    assert "成员加入时已各自与健康宝比对" in desk.locator(".last-sync").inner_text()
