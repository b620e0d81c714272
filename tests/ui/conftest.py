"""Browser tests of the H5 pages: Playwright (sync API) driving Debian's Chromium
against the same real stack the end-to-end tests start (``running``).

Playwright's sync API runs its own greenlet dispatcher; an eventlet monkey-patched
process would break it (and eventlet's hub would fight Playwright's event loop), so the
first fixture asserts this test process is plain Python. Nothing here imports a Nameko
service; the services run in their own processes.

Screenshots go to ``artifacts/screenshots/NN-name.png``.

To iterate against a stack you already run (``make run``), set ``UI_GATEWAY_URL`` and
``UI_HEALTHKIT_URL``; otherwise the session starts its own.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e.api_client import ApiClient

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MOBILE = {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1}
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session", autouse=True)
def not_monkey_patched():
    """Playwright must not run in an eventlet monkey-patched process."""
    import eventlet.patcher

    patched = [m for m in ("socket", "thread", "time", "select") if eventlet.patcher.is_monkey_patched(m)]
    assert not patched, f"the UI test process is eventlet monkey-patched ({patched}); Playwright cannot run in it"


@pytest.fixture(scope="session")
def stack(request):
    """The gateway and Health Kit simulator to test: the session's own stack, or one you run."""
    url = os.environ.get("UI_GATEWAY_URL")
    if url:
        hk = os.environ.get("UI_HEALTHKIT_URL", "http://127.0.0.1:8010")
        return SimpleNamespace(gateway_url=url.rstrip("/"), healthkit_url=hk, api=lambda: ApiClient(url, hk))
    return request.getfixturevalue("running")


@pytest.fixture
def client(stack) -> ApiClient:
    return stack.api()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Browsing:
    """Opens browser contexts (one per person: each has its own localStorage) and
    remembers every page's console errors and uncaught exceptions."""

    def __init__(self, browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts = []
        self.errors: list[str] = []

    def page(self, desktop: bool = False):
        ctx = self.browser.new_context(base_url=self.base_url, locale="zh-CN", accept_downloads=True,
                                       **(DESKTOP if desktop else MOBILE))
        ctx.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(ctx)
        page = ctx.new_page()
        self.watch(page)
        return page

    def watch(self, page) -> None:
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        page.on("console", lambda m: m.type == "error" and not _expected_console(m.text)
                and self.errors.append(f"{page.url}: console: {m.text}"))

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()
        self.contexts.clear()


def _expected_console(text: str) -> bool:
    # the browser logs every non-2xx fetch as "Failed to load resource"; the pages show
    # those errors to the person, which the tests check on the page itself
    return "Failed to load resource" in text


def make_browsing(browser, stack):
    return Browsing(browser, stack.gateway_url)


@pytest.fixture
def browsing(browser, stack):
    b = Browsing(browser, stack.gateway_url)
    yield b
    errors = list(b.errors)
    b.close()
    assert not errors, "JavaScript errors on the pages:\n" + "\n".join(errors)


def shot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot as artifacts/screenshots/<name>.png (name is "NN-what")."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the screen"
    if full_page:  # from the top, or the sticky bar lands mid-picture
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def sms_code(client: ApiClient, phone: str, after: int) -> str:
    """The newest code texted to ``phone`` once more than ``after`` messages exist."""
    return client.latest_code(phone, after=after)


def wait_for(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def digits(text: str) -> str:
    m = re.search(r"(?<!\d)(\d{6})(?!\d)", text)
    assert m, f"no 6-digit code in {text!r}"
    return m.group(1)
