"""The console in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import IN_CI, register_scripted
from tests.live import Live, live_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
REPLY = "streams arrive one word at a time in the playground"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("Debian's chromium is required in CI (scripts/setup.sh installs it)")
        pytest.skip("chromium is not installed: apt-get install -y chromium chromium-driver")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--headless",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


def log_in(page: Page, base: Live, path: str) -> None:
    """Ask for ``path``, get sent to the login page, log in with the admin key, land there."""
    page.goto(base + path)
    assert "/ui/login" in page.url
    page.fill("#key", base.key)
    page.click("button[type=submit]")
    page.wait_for_url(base + path)


def test_playground_streams_a_reply(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=[REPLY], token_delay_ms=120)
    store.close()
    with live_server(home) as base:
        page = browser.new_page()
        log_in(page, base, "/")
        assert page.locator("#model option").all_inner_texts() == ["bot"]
        page.fill("#prompt", "How do replies arrive?")
        page.click("#send")
        reply = page.locator(".msg.assistant .body")
        # Part of the reply shows before the whole: it is streamed, not sent at the end.
        page.wait_for_function(
            "() => { const t = document.querySelector('.msg.assistant .body').textContent;"
            f" return t.length > 0 && t.length < {len(REPLY)}; }}",
            timeout=10_000,
        )
        page.wait_for_selector(".msg.assistant[data-state=done]", timeout=20_000)
        assert reply.inner_text() == REPLY
        assert page.locator(".msg.user .body").inner_text() == "How do replies arrive?"
        assert "out" in page.locator("#status").inner_text()  # token usage shown
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
        page.goto(base + "/ui/models/bot")
        assert "production" in page.locator("#aliases").inner_text()
        page.screenshot(path=str(ARTIFACTS / "model.png"), full_page=True)
        page.close()


def test_admin_creates_a_key_and_sees_it_in_usage_and_audit(
    browser: Browser, tmp_path: Path
) -> None:
    home = tmp_path / "keys-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["ok"])
    store.close()
    with live_server(home) as base:
        page = browser.new_page()
        page.goto(base + "/ui/login")
        page.fill("#key", "my_notakey")
        page.click("button[type=submit]")
        assert "Incorrect API key" in page.locator(".error").inner_text()
        log_in(page, base, "/ui/keys")
        cookie = next(c for c in page.context.cookies() if c["name"] == "modelyard_session")
        assert cookie["httpOnly"] and cookie["secure"]
        page.fill("#create-key input[name=name]", "mobile-app")
        page.fill("#create-key input[name=rpm]", "30")
        page.click("#create-key button[type=submit]")
        page.wait_for_selector("#new-secret:not([hidden])")
        secret = page.locator("#secret-value").inner_text().strip()
        assert secret.startswith("my_")
        reply = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"authorization": f"Bearer {secret}"},
            json={"model": "bot", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.status_code == 200
        assert reply.headers["x-ratelimit-limit-requests"] == "30"
        page.reload()
        assert "mobile-app" in page.locator("#keys").inner_text()
        page.screenshot(path=str(ARTIFACTS / "keys.png"), full_page=True)
        key_id = secret.split("_")[1]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the request log is written within a second
            page.goto(base + "/ui/usage")
            if key_id in page.locator("#usage").inner_text():
                break
            time.sleep(0.3)
        assert key_id in page.locator("#usage").inner_text()
        page.screenshot(path=str(ARTIFACTS / "usage.png"), full_page=True)
        page.goto(base + "/ui/audit")
        audit = page.locator("#audit").inner_text()
        assert "key.create" in audit and key_id in audit
        page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)
        page.close()


def test_monitor_draws_live_data_and_a_request_opens(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "monitor-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["ok then"], token_delay_ms=5)
    store.close()
    with live_server(home, MODELYARD_ALERT_INTERVAL_S="0.5") as base:
        rule = {"name": "busy", "metric": "requests", "comparison": ">", "threshold": 2}
        created = httpx.post(f"{base}/api/alerts/rules", headers=base.headers, json=rule)
        assert created.status_code == 201, created.text
        ask = {"model": "bot", "messages": [{"role": "user", "content": "mail me at a@b.example"}]}
        ids = [
            httpx.post(f"{base}/v1/chat/completions", headers=base.headers, json=ask).headers[
                "x-modelyard-request-id"
            ]
            for _ in range(5)
        ]
        page = browser.new_page()
        log_in(page, base, "/ui/requests")
        deadline = time.monotonic() + 10
        while ids[-1] not in page.content() and time.monotonic() < deadline:
            time.sleep(0.3)
            page.reload()
        page.click(f"a[href='/ui/requests/{ids[-1]}']")
        page.wait_for_url(f"{base}/ui/requests/{ids[-1]}")
        assert page.locator("#response").inner_text() == "ok then"
        assert "EMAIL" in page.locator("#request").inner_text()
        page.screenshot(path=str(ARTIFACTS / "request.png"), full_page=True)
        page.goto(base + "/ui/monitor?hours=1")
        page.wait_for_selector("#charts[data-ready=true]")
        page.wait_for_selector("#chart-throughput .main-svg", timeout=10_000)
        assert page.locator(".js-plotly-plot").count() == 7
        assert "bot@1" in page.locator("#chart-latency").inner_text()
        page.screenshot(path=str(ARTIFACTS / "monitor.png"), full_page=True)
        deadline = time.monotonic() + 10  # the evaluator runs every half second here
        page.goto(base + "/ui/alerts")
        while "firing" not in page.locator("#events").inner_text() and time.monotonic() < deadline:
            time.sleep(0.3)
            page.reload()
        assert "firing" in page.locator("#events").inner_text()
        assert "requests > 2" in page.locator("#rules").inner_text()
        page.screenshot(path=str(ARTIFACTS / "alerts.png"), full_page=True)
        page.goto(base + "/ui/drift")
        assert "30 requests in both windows" in page.locator("#drift").inner_text()
        page.close()
