"""The console's languages in a real browser: a browser that prefers Chinese gets the console
in 简体中文 from the first page (the login form's included), the header's switch turns it to
English and the choice outlasts the next page, the scripts' messages follow the page's
language, and screenshots of a few pages in both languages go to docs/images/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.console.test_browser import browser
from tests.live import Live, live_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, used here too
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
REPLY = "灰度发布 rolls a candidate out step by step"
# The pages shot in each language: their name in the file and their path.
SHOTS = (
    ("playground", "/"),
    ("models", "/ui/models/bot"),
    ("keys", "/ui/keys"),
    ("rollouts", "/ui/rollouts"),
)


def shoot(page: Page, base: Live, language: str) -> None:
    for name, path in SHOTS:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(IMAGES / f"console-{language}-{name}.png"))


def test_chinese_by_default_then_english_by_the_switch(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "i18n-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    registry = Registry(store)
    register_scripted(registry, "bot", replies=[REPLY], token_delay_ms=20)
    register_scripted(registry, "bot", alias="candidate", replies=[REPLY])
    store.close()
    IMAGES.mkdir(exist_ok=True)
    with live_server(home) as base:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 820})
        page = context.new_page()
        page.goto(base + "/ui/keys")
        assert page.get_attribute("html", "lang") == "zh-Hans"
        assert page.locator("button[type=submit]", has_text="登录").count() == 1
        page.screenshot(path=str(IMAGES / "console-zh-login.png"))
        page.fill("#key", base.key)
        page.click("form.login button[type=submit]")
        page.wait_for_url(base + "/ui/keys")
        assert page.locator("nav a[href='/ui/rollouts']").inner_text() == "灰度发布"

        # A script's message, in the page's language.
        page.fill("#create-key input[name=name]", "shop")
        page.click("#create-key button[type=submit]")
        page.wait_for_function("document.getElementById('key-status').textContent !== ''")
        assert page.locator("#key-status").inner_text().startswith("已创建")

        page.goto(base + "/")
        page.fill("#prompt", "什么是灰度发布？")
        page.click("#send")
        page.wait_for_selector(".msg.assistant[data-state=done]", timeout=20_000)
        assert "首 token" in page.locator("#status").inner_text()
        assert page.locator(".msg.user .who").inner_text() == "用户"
        page.screenshot(path=str(IMAGES / "console-zh-playground-reply.png"))
        shoot(page, base, "zh")

        # The switch: English now, on this page and the next, whatever the browser prefers.
        page.goto(base + "/ui/models")
        page.click("form.languages button[value=en]")
        page.wait_for_url(base + "/ui/models")
        assert page.get_attribute("html", "lang") == "en"
        assert page.locator("th").first.inner_text() == "Model"
        page.goto(base + "/ui/rollouts")
        assert page.get_attribute("html", "lang") == "en"
        assert (
            page.locator("form.languages button[value=en]").get_attribute("aria-pressed") == "true"
        )
        shoot(page, base, "en")
        context.close()


def test_an_english_browser_gets_english(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "i18n-en"
    home.mkdir()
    with live_server(home) as base:
        context = browser.new_context(locale="en-GB")
        page = context.new_page()
        page.goto(base + "/ui/login")
        assert page.get_attribute("html", "lang") == "en"
        page.screenshot(path=str(IMAGES / "console-en-login.png"))
        page.click("form.languages button[value=zh_Hans]")
        page.wait_for_url(base + "/ui/login")
        assert page.get_attribute("html", "lang") == "zh-Hans"
        context.close()
