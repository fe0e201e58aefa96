"""The playground in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import IN_CI, register_scripted
from tests.live import live_server

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


def test_playground_streams_a_reply(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=[REPLY], token_delay_ms=120)
    store.close()
    with live_server(home) as base:
        page = browser.new_page()
        page.goto(base + "/")
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
