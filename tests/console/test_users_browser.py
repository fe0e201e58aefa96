"""The Users page in a real browser: an admin erases a user only after typing the id again."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.console.test_browser import ARTIFACTS, browser, log_in
from tests.live import live_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, used here too
USER = "team/frank"


def test_an_admin_erases_a_user_after_typing_the_id(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "users-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["ok"])
    store.close()
    with live_server(home) as base:
        ask = {"model": "bot", "user": USER, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):
            reply = httpx.post(f"{base}/v1/chat/completions", headers=base.headers, json=ask)
            assert reply.status_code == 200
        page = browser.new_page()
        log_in(page, base, "/ui/users")
        page.fill("input[name=user]", USER)
        page.click("form.controls button[type=submit]")
        page.wait_for_selector("#user-summary")
        assert page.locator("#user-summary td").first.inner_text() == "2"
        page.screenshot(path=str(ARTIFACTS / "users.png"), full_page=True)

        answers = iter(["team/someone-else", USER])

        def confirm(dialog: Dialog) -> None:
            dialog.accept(next(answers))

        page.on("dialog", confirm)
        page.click("#erase-user")
        page.wait_for_function("document.getElementById('erase-status').textContent !== ''")
        assert "Not erased" in page.locator("#erase-status").inner_text()
        page.click("#erase-user")
        page.wait_for_function(
            "document.getElementById('erase-status').textContent.startsWith('Erased as')"
        )
        assert "2 requests" in page.locator("#erase-status").inner_text()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "user-summary" in page.content():
            page.reload()
        assert "no logged request names the user" in page.locator("#user-message").inner_text()
        page.close()
