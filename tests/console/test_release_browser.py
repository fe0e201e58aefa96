"""The rollout and experiment pages in a real browser: their plotly charts draw, and follow
new measurements without a reload; an admin plans and starts a rollout from the form."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.release.controller import LEASE
from modelyard.store import open_store
from modelyard.store.lease import acquire_lease
from tests.conftest import IN_CI, register_scripted
from tests.console.test_browser import log_in
from tests.live import Live, live_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STEPS = [
    {"set_weight": 50},
    {"analysis": {"interval_s": 0.5, "min_samples": 5, "count": 200}},
    {"gate": {"task": "qa", "rules": [{"metric": "exact_match", "min_value": 0.5}]}},
]

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
            args=["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"],
        )
        yield launched
        launched.close()


def controller_lease(home: Path, *, hold: bool) -> None:
    """Take the release controller's lease for a while, or give it up at once."""
    store = open_store(Settings(home=home).store_url)
    try:
        ttl = timedelta(minutes=5) if hold else timedelta(seconds=-1)
        assert acquire_lease(store, LEASE, "another-replica", ttl)
    finally:
        store.close()


def send(base: Live, requests: int) -> None:
    with httpx.Client(base_url=base, headers=base.headers) as client:
        for i in range(requests):
            ask = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
            answer = client.post("/v1/chat/completions", json={**ask, "user": f"user-{i}"})
            assert answer.status_code == 200, answer.text


def wait_for_measurements(base: Live, path: str, at_least: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        found: list[dict[str, Any]] = httpx.get(
            f"{base}{path}/measurements", headers=base.headers
        ).json()["data"]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_rollout_charts_draw_and_follow_new_measurements(browser: Browser, tmp_path: Path) -> None:
    home = tmp_path / "release-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "chat", token_delay_ms=1)
    register_scripted(Registry(store), "chat", alias="canary", token_delay_ms=1)
    store.close()
    # While the test starts the rollout, "another replica" holds the release controller: the
    # POST's own first advance and the controller's then cannot collide.
    controller_lease(home, hold=True)
    with live_server(home, MODELYARD_RELEASE_TICK_S="0.2") as base:
        started = httpx.post(
            f"{base}/api/rollouts",
            headers=base.headers,
            json={"model": "chat", "candidate": 2, "steps": STEPS},
        )
        assert started.status_code == 201, started.text
        controller_lease(home, hold=False)  # the server's controller takes over from here
        rollout = f"/api/rollouts/{started.json()['id']}"
        send(base, 30)
        assert len(wait_for_measurements(base, rollout, 2)) >= 2

        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: dialog.accept())
        log_in(page, base, f"/ui/rollouts/{started.json()['id']}")
        page.wait_for_selector("#charts[data-ready=true]")
        page.wait_for_selector("#chart-1 .main-svg", timeout=10_000)
        assert page.locator(".js-plotly-plot").count() == 2  # error_rate and latency
        traces = page.evaluate(
            "() => [...document.querySelectorAll('.js-plotly-plot')].map((c) => c.data.length)"
        )
        assert all(n >= 4 for n in traces), traces  # band (2), estimate, margin
        # The default latency metric, compared on the log scale.
        assert "log latency" in page.locator("#chart-1").inner_text()

        # New measurements arrive without a reload: the page polls the API.
        page.evaluate("() => { window.stillTheSamePage = true; }")
        shown = int(page.locator("#charts").get_attribute("data-measurements") or "0")
        page.wait_for_function(
            f"() => Number(document.getElementById('charts').dataset.measurements) > {shown}"
            f" && Number(document.getElementById('latest').dataset.measurements) > {shown}",
            timeout=12_000,
        )
        assert page.evaluate("() => window.stillTheSamePage === true")
        points = page.evaluate("() => document.getElementById('chart-0').data[2].x.length")
        assert points > shown
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "rollout.png"), full_page=True)

        # Promote is refused while the eval gate waits: the API's reason shows.
        page.click("#action-buttons button[data-action=promote]")
        page.wait_for_function(
            "() => document.getElementById('action-status').textContent.includes('gate_not_passed')"
        )
        page.fill("#action-reason", "seen enough")
        page.click("#action-buttons button[data-action=abort]")
        page.wait_for_function("() => document.getElementById('status').textContent === 'aborted'")
        assert page.locator("#action-buttons button").count() == 0
        assert "seen enough" in page.locator("#events").inner_text()
        assert httpx.get(f"{base}{rollout}", headers=base.headers).json()["status"] == "aborted"

        # An experiment's page draws the primary metric per treatment the same way.
        experiment = {
            "name": "ab1",
            "model": "chat",
            "variants": [
                {"name": "control", "version": 1, "weight": 50},
                {"name": "treatment", "version": 2, "weight": 50},
            ],
            "primary": {"name": "error_rate"},
            "min_samples": 5,
            "interval_s": 0.3,
        }
        created = httpx.post(f"{base}/api/experiments", headers=base.headers, json=experiment)
        assert created.status_code == 201, created.text
        send(base, 20)
        assert len(wait_for_measurements(base, "/api/experiments/ab1", 2)) >= 2
        page.goto(f"{base}/ui/routes")
        route = page.locator("section[data-model=chat]").inner_text()
        assert "managed by experiment 1" in route and "chat@2" in route and "50%" in route
        page.screenshot(path=str(ARTIFACTS / "routes.png"), full_page=True)
        page.goto(f"{base}/ui/experiments/ab1")
        page.wait_for_selector("#chart-0 .main-svg", timeout=10_000)
        assert "treatment \u2212 control" in page.locator("#chart-0").inner_text()
        page.screenshot(path=str(ARTIFACTS / "experiment.png"), full_page=True)
        stop = page.locator("#action-buttons button[data-action=stop]")
        stop.click()
        page.wait_for_function("() => document.getElementById('status').textContent === 'stopped'")
        page.goto(f"{base}/ui/routes")
        assert "No route has a traffic policy" in page.locator("main").inner_text()
        assert errors == []
        page.close()


def test_an_admin_plans_and_starts_a_rollout_from_the_form(
    browser: Browser, tmp_path: Path
) -> None:
    home = tmp_path / "start-ui"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "chat", token_delay_ms=1)
    register_scripted(Registry(store), "chat", alias="canary", token_delay_ms=1)
    store.close()
    steps = "- set_weight: 50\n- analysis: {interval_s: 60, min_samples: 5}\n"
    with live_server(home) as base:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, base, "/ui/rollouts")
        page.fill("#start-rollout [name=model]", "chat")
        page.press("#start-rollout [name=model]", "Tab")
        assert page.input_value("#start-rollout [name=candidate]") == "2"  # the latest version

        # Steps that do not parse: the API's message shows, and nothing starts.
        page.fill("#start-rollout [name=steps]", "- set_weight: [50")
        page.click("#start-rollout button[value=start]")
        page.wait_for_function(
            "() => document.getElementById('start-status').textContent.includes('steps_yaml')"
        )
        assert "not valid YAML" in page.locator("#start-status").inner_text()
        assert page.get_attribute("#start-rollout [name=steps]", "aria-invalid") == "true"

        # Plan: what the analysis can detect at 5 requests/s, as /api/rollouts/plan says.
        page.fill("#start-rollout [name=steps]", steps)
        page.fill("#start-rollout [name=requests_per_s]", "5")
        page.click("#start-rollout button[value=plan]")
        page.wait_for_selector("#start-plan table.plan-step")
        body = {"model": "chat", "candidate": 2, "steps_yaml": steps, "requests_per_s": 5}
        plan = httpx.post(f"{base}/api/rollouts/plan", headers=base.headers, json=body).json()
        shown = page.locator("#start-plan").inner_text()
        assert "Step 2: analysis at 50%" in shown
        for metric in plan["steps"][0]["metrics"]:
            row = page.locator(f"#start-plan tr[data-plan-metric={metric['name']}]").inner_text()
            assert metric["detectable_text"] in row and metric["margin_text"] in row
        assert all(warning in shown for warning in plan["warnings"])
        assert httpx.get(f"{base}/api/rollouts", headers=base.headers).json()["data"] == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "rollout-start.png"), full_page=True)

        page.click("#start-rollout button[value=start]")
        page.wait_for_url(re.compile(r".*/ui/rollouts/\d+$"))
        rollout_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector("#charts[data-ready=true]", state="attached")  # no chart yet
        assert page.locator("#status").inner_text() == "running"
        assert page.locator("#weight").inner_text() == "50%"
        rollout = httpx.get(f"{base}/api/rollouts/{rollout_id}", headers=base.headers).json()
        assert rollout["status"] == "running" and rollout["candidate"] == 2
        page.screenshot(path=str(ARTIFACTS / "rollout-started.png"), full_page=True)
        assert errors == []
        page.close()
