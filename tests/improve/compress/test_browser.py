"""Compression from the console in a real browser: an admin starts one from the form, lands
on its page, which reloads until the table is measured and then draws the Pareto front."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from modelyard.bootstrap import smollm2_path
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from modelyard.store import open_store
from tests.console.test_browser import ARTIFACTS, browser, log_in
from tests.live import live_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with the console's browser tests


def test_an_admin_compresses_a_model_and_sees_its_front(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "compress-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    Registry(store).add_version(
        "smol",
        VersionCreate(engine_kind="llamacpp", artifact_uri=str(smollm2_path())),
        actor="tests",
    )
    texts = ["The sun rises in the east.", "Cats sleep most of the day.", "Rain is wet."]
    DatasetService(store).register_items("sentences", [{"text": t} for t in texts], {}, "tests")
    store.close()
    with live_server(home) as base:
        page = browser.new_page()
        log_in(page, base, "/ui/compress")
        page.fill("#compress input[name=version]", "smol@1")
        page.fill("#compress input[name=to]", "Q8_0")
        page.fill("#compress input[name=streams]", "1")
        page.fill("#compress input[name=dataset]", "sentences")
        page.fill("#compress input[name=gate]", "not json")
        page.click("#compress button[type=submit]")
        page.wait_for_function(
            "document.getElementById('form-status').textContent.includes('gate is not JSON')"
        )
        page.fill("#compress input[name=gate]", '[{"metric": "size_mb", "min_value": 1}]')
        page.click("#compress button[type=submit]")
        page.wait_for_url(f"{base}/ui/compress/1", timeout=15_000)
        # The page reloads every 3 s while the compression runs.
        page.wait_for_selector("#compression[data-running='no']", timeout=120_000)
        page.wait_for_selector("#charts[data-ready='true']", state="attached", timeout=15_000)
        assert page.locator("#status").inner_text() == "done (done)"
        cells = page.locator("#variants tbody tr").all_inner_texts()
        assert len(cells) == 2 and "1 (parent)" in cells[0] and "Q8_0" in cells[1]
        assert "pass" in cells[1]  # the gate: 145 MB is at least 1 MB
        assert page.locator("#chart-size .main-svg").count() >= 1
        assert page.locator("#chart-speed .main-svg").count() >= 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "compress.png"), full_page=True)
