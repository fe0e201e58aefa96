"""The review queue in a real browser: a reviewer goes through the items with the
keyboard, corrects two, rejects one (after undoing a slip), accepts and skips others, and
finishes; the new version holds exactly those changes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from modelyard.config import Settings
from modelyard.store import open_store
from tests.console.test_browser import ARTIFACTS, browser, log_in
from tests.improve.review.items import answer_items, register_answers
from tests.live import live_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with the console's browser tests


def at(page: Page, index: int) -> None:
    """Wait until the page shows item ``index`` and takes keys again."""
    page.wait_for_selector(f'#reviewer[data-index="{index}"][data-busy="no"]', timeout=15_000)
    assert page.locator("#item-index").inner_text() == str(index)


def correct(page: Page, text: str) -> None:
    page.keyboard.press("e")
    page.wait_for_selector("#correction-form:not([hidden])")
    page.keyboard.type(text)  # the editor opens with the answer selected: typing replaces it
    page.keyboard.press("Control+Enter")


def test_a_reviewer_corrects_two_items_and_rejects_one(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "review-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_answers(store, 6)
    store.close()
    with live_server(home) as base:
        body = {"dataset": "qa", "instructions": "Fix wrong answers; reject nonsense."}
        made = httpx.post(f"{base}/api/reviews", headers=base.headers, json=body)
        assert made.status_code == 201, made.text
        review_id = made.json()["id"]
        page = browser.new_page()
        log_in(page, base, f"/ui/reviews/{review_id}")
        assert "reject nonsense" in page.locator("#instructions").inner_text()
        at(page, 0)
        assert page.locator("#question").inner_text() == "What is question 0?"
        assert page.locator("#answer").inner_text() == "answer 0"
        correct(page, "Paris")
        at(page, 1)
        page.keyboard.press("a")
        at(page, 2)
        page.keyboard.press("r")
        at(page, 3)
        page.keyboard.press("r")  # a slip: undone at once
        at(page, 4)
        page.keyboard.press("u")
        at(page, 3)
        assert page.locator("#item-state").inner_text() == "undecided"
        correct(page, "forty-two")
        at(page, 4)
        page.keyboard.press("s")
        at(page, 5)
        page.keyboard.press("a")
        at(page, 4)  # only the skipped item is left: it comes back, marked
        assert page.locator("#item-skipped").is_visible()
        progress = page.locator("#progress-text").inner_text()
        assert progress.startswith("5/6 decided: 2 accepted, 2 corrected, 1 rejected; 1 skips")
        page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)

        page.check("#finish input[value=keep]")
        page.click("#finish button[type=submit]")
        page.wait_for_selector("#result a", timeout=15_000)
        assert page.locator("#result a").inner_text() == "qa@2"
        version = httpx.get(f"{base}/api/datasets/qa/2", headers=base.headers).json()
        items = answer_items(6)
        assert version["items"] == [
            {**items[0], "corrected": "Paris"},
            items[1],
            {**items[3], "corrected": "forty-two"},
            items[4],
            items[5],
        ]
        assert version["source"]["kind"] == "reviewed" and version["source"]["review"] == review_id
        page.close()
