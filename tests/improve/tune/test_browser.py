"""The Tune pages in a real browser: an admin starts a study from the form, its page
follows it to the end and draws the history and importances with plotly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.console.test_browser import ARTIFACTS, browser, log_in
from tests.improve.tune.words import MODEL, study_body, words
from tests.live import live_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with the console's browser tests


def test_an_admin_starts_a_study_and_its_page_follows_it(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "tune-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), MODEL, reverse_above_temperature=0.5)
    DatasetService(store).register_items("words", words(), {"kind": "tests"}, "tests")
    store.close()
    with live_server(home) as base:
        page = browser.new_page()
        log_in(page, base, "/ui/tune")
        page.fill("textarea[name=body]", json.dumps(study_body(trials=8)))
        page.click("#start-study button[type=submit]")
        page.wait_for_url(re.compile(r".*/ui/tune/\d+$"))
        study_id = int(page.url.rsplit("/", 1)[1])
        page.wait_for_selector("#status:text('done')", timeout=60_000)  # it reloads itself
        page.wait_for_selector("#charts[data-ready=true]")
        page.wait_for_selector("#chart-history .main-svg")
        page.wait_for_selector("#chart-importances .main-svg")
        study = httpx.get(f"{base}/api/tune/studies/{study_id}", headers=base.headers).json()
        assert page.locator("#trials tbody tr").count() == len(study["trials"]) == 8
        assert "better" in page.locator("#verdict").inner_text()
        assert set(study["importances"]["values"]) <= set(
            page.locator("#chart-importances").inner_text().split()
        )
        page.screenshot(path=str(ARTIFACTS / "tune.png"), full_page=True)
        page.close()
