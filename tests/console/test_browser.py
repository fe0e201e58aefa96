"""The console in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

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


PERSON_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _tool_call_stream() -> str:
    """An answer that calls get_weather, streamed as vLLM does, with the tokens' logprobs."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "bot"}
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}}
    tokens = [("<tool_call>", -0.01), ("Paris", -0.7)]
    logprobs = {
        "content": [
            {"token": t, "logprob": p, "top_logprobs": [{"token": t, "logprob": p}]}
            for t, p in tokens
        ]
    }
    deltas = [
        {"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}, "logprobs": logprobs},
        *(
            {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": a}}]}}
            for a in ('{"city": ', '"Paris"}')
        ),
        {"index": 0, "delta": {}, "finish_reason": "tool_calls"},
    ]
    events = [{**head, "choices": [choice]} for choice in deltas]
    usage = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    events.append({**head, "choices": [], "usage": usage})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def test_playground_sends_a_schema_and_tools_and_shows_the_tool_call(
    browser: Browser, tmp_path: Path
) -> None:
    home = tmp_path / "tools"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["unused"])
    store.close()
    sent: list[dict[str, Any]] = []

    def answer(route: Route) -> None:
        sent.append(route.request.post_data_json)
        route.fulfill(status=200, content_type="text/event-stream", body=_tool_call_stream())

    with live_server(home) as base:
        page = browser.new_page()
        page.route("**/v1/chat/completions", answer)
        log_in(page, base, "/")
        page.click("#advanced summary")
        page.select_option("#format", "json_schema")
        page.fill("#schema", '{"type": "object",')  # not JSON yet
        page.fill("#prompt", "Weather in Paris?")
        page.click("#send")
        assert "Not JSON" in page.locator("#schema-error").inner_text()
        assert sent == [] and page.locator(".msg").count() == 0
        page.fill("#schema", json.dumps(PERSON_SCHEMA))
        page.fill("#schema-name", "weather_query")
        page.fill("#tools", json.dumps([WEATHER_TOOL]))
        page.select_option("#tool-choice", "get_weather")
        page.check("#logprobs")
        page.click("#send")
        page.wait_for_selector(".msg.assistant[data-state=done]", timeout=10_000)
        (body,) = sent
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "weather_query", "schema": PERSON_SCHEMA, "strict": True},
        }
        assert body["tools"] == [WEATHER_TOOL]
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        assert (body["logprobs"], body["top_logprobs"], body["stream"]) == (True, 5, True)
        assert page.locator(".tool-call .name").inner_text() == "get_weather()"
        args = page.locator(".tool-call .args").inner_text()
        assert json.loads(args) == {"city": "Paris"} and "\n" in args  # pretty
        tokens = page.locator(".tokens .token")
        assert tokens.all_inner_texts() == ["<tool_call>", "Paris"]
        assert tokens.nth(1).get_attribute("title") == '49.7% · top: "Paris" 49.7%'
        assert "tool_calls" in page.locator("#status").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "playground_tools.png"), full_page=True)
        page.close()
