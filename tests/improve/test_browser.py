"""Curation and labelling from the console in a real browser: an admin previews a
curation of the logged traffic, builds it, and has a teacher label the new version; each
form lands on the page of what it made."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.console.test_browser import ARTIFACTS, browser, log_in
from tests.live import live_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with the console's browser tests

QUESTIONS = [
    "My parcel has not arrived after two weeks, where is it?",
    "Can I change the delivery address of an order already shipped?",
    "The courier left my package with a neighbour I do not know.",
    "How much does express shipping to Norway cost?",
    "Tracking says delivered but my mailbox is empty.",
    "Do you deliver on Sundays in rural areas?",
    "A box arrived crushed and the vase inside is broken.",
    "Why was I charged customs duty on a gift?",
    "Could the driver ring the bell instead of knocking?",
    "Is it possible to pick up the order from a locker?",
    "The label printed without a barcode, what now?",
    "I would like to return shoes that are too small.",
]


def test_an_admin_curates_traffic_and_labels_it_from_the_console(
    browser: Browser, tmp_path: Path
) -> None:
    home = tmp_path / "improve-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    registry = Registry(store)
    register_scripted(registry, "support", replies=["It is on its way."])
    register_scripted(registry, "teacher", replies=["late"])
    store.close()
    with live_server(home, MODELYARD_LOG_FLUSH_INTERVAL_S="0.2") as base:
        for question in [*QUESTIONS, *QUESTIONS[:3]]:  # three sent twice
            body = {"model": "support", "messages": [{"role": "user", "content": question}]}
            answer = httpx.post(f"{base}/v1/chat/completions", headers=base.headers, json=body)
            assert answer.status_code == 200, answer.text
        logged: list[object] = []
        for _ in range(100):  # the log writer flushes every 0.2 s
            listed = httpx.get(f"{base}/api/requests?limit=100", headers=base.headers)
            logged = listed.json()["data"]
            if len(logged) >= 15:
                break
            time.sleep(0.1)
        assert len(logged) == 15
        page = browser.new_page()
        log_in(page, base, "/ui/curate")
        page.fill("#curate input[name=name]", "parcels")
        page.fill("#curate input[name=route]", "support")
        page.fill("#curate input[name=split]", "50/0/50")
        page.click("#curate button[value=preview]")
        page.wait_for_selector("#preview:not([hidden])", timeout=15_000)
        assert page.locator("#curate-status").inner_text() == "15 rows read, 12 would be kept."
        steps = page.locator("#preview tbody tr td:first-child").all_inner_texts()
        assert "exact_duplicates" in steps and "split" in steps
        page.click("#curate button[value=build]")
        page.wait_for_url(f"{base}/ui/curate/parcels/1", timeout=15_000)
        assert page.locator("#kept").inner_text() == "12"

        page.goto(f"{base}/ui/label")
        page.fill("#label input[name=dataset]", "parcels@1")
        page.fill("#label input[name=teacher]", "teacher")
        page.fill("#label input[name=labels]", "late, on time")
        page.click("#label button[type=submit]")
        page.wait_for_url(f"{base}/ui/label/1", timeout=15_000)
        run: dict[str, object] = {}
        for _ in range(100):
            run = httpx.get(f"{base}/api/label/1", headers=base.headers).json()
            if run["status"] != "running":
                break
            time.sleep(0.2)
        assert run["status"] == "done" and run["result"] == "parcels-labelled@1"
        assert run["counts"] == {
            "items": 12,
            "done": 12,
            "labelled": 12,
            "unmapped": 0,
            "failed": 0,
        }
        page.screenshot(path=str(ARTIFACTS / "label.png"), full_page=True)
