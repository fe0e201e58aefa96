"""The Evals page in a real browser: an admin pastes a task file's text into the start
form, lands on the new run's page, and sees it end with its metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.console.test_browser import browser, log_in
from tests.evaluate.test_start import TASK, qa_items
from tests.live import live_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, used here too


def test_an_admin_starts_a_run_from_the_form_and_follows_it(
    browser: Browser, tmp_path: Path
) -> None:
    home = tmp_path / "ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "echo", token_delay_ms=50)
    DatasetService(store).register_items("qa", qa_items(), {"kind": "inline"}, actor="tests")
    store.close()
    with live_server(home) as base:
        page = browser.new_page()
        log_in(page, base, "/ui/eval")
        page.fill("textarea[name=task_yaml]", TASK.replace("{{ shown }}", "{{ nope }}"))
        page.fill("input[name=model]", "echo")
        page.click("#start-eval button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('eval-status').textContent.includes('(task_yaml)')"
        )
        assert "uses field(s) nope" in page.inner_text("#eval-status")  # the API's 400
        page.fill("textarea[name=task_yaml]", TASK)
        page.fill("input[name=limit]", "6")
        page.fill("input[name=concurrency]", "1")
        page.click("#start-eval button[type=submit]")
        page.wait_for_url(re.compile(r".*/ui/eval/runs/\d+$"), timeout=10_000)
        page.wait_for_function(
            "() => document.getElementById('status').textContent === 'done'", timeout=30_000
        )
        assert "exact_match" in page.inner_text("#metrics")
        assert page.locator("#worst tbody tr").count() >= 1
        page.close()
