"""``GET /metrics``: Prometheus text that promtool accepts, with what the traffic did."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import IN_CI, AppClient, bearer, new_key, register_scripted
from tests.live import live_server

ASK = {"model": "bot", "messages": [{"role": "user", "content": "hello there"}]}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if IN_CI:
            pytest.fail("promtool (Debian package prometheus) is required in CI")
        pytest.skip("promtool missing: apt-get install prometheus")
    return found


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_promtool_accepts_metrics_after_mixed_traffic(tmp_path: Path) -> None:
    tool = promtool()
    home = tmp_path / "metrics"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["one two three"])
    store.close()
    with live_server(home) as base, httpx.Client(base_url=base, headers=base.headers) as http:
        for _ in range(3):
            assert http.post("/v1/chat/completions", json=ASK).status_code == 200
        streamed = http.post("/v1/chat/completions", json={**ASK, "stream": True})
        assert streamed.status_code == 200
        assert http.post("/v1/chat/completions", json={**ASK, "model": "nope"}).status_code == 404
        assert http.post("/v1/chat/completions", json={"model": "bot"}).status_code == 400
        pii = {"model": "bot", "messages": [{"role": "user", "content": "mail a@b.example"}]}
        assert http.post("/v1/chat/completions", json=pii).status_code == 200
        limited = http.post(
            "/api/keys", json={"name": "slow", "limits": {"requests_per_minute": 1}}
        ).json()["secret"]
        codes = [
            http.post("/v1/chat/completions", json=ASK, headers=bearer(limited)).status_code
            for _ in range(2)
        ]
        assert codes == [200, 429]
        anonymous = httpx.get(f"{base}/metrics")
        assert anonymous.status_code == 401  # metrics need a key like everything else
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    checked = subprocess.run(
        [tool, "check", "metrics"], input=response.text, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    values = samples(response.text)
    ok = (("route", "bot"), ("status", "200"), ("version", "bot@1"))
    assert values[("modelyard_requests_total", ok)] == 6  # 3, the stream, pii, `slow`'s first

    def unversioned(route: str, status: int) -> float:
        labels = (("route", route), ("status", str(status)), ("version", "-"))
        return values[("modelyard_requests_total", labels)]

    assert unversioned("nope", 404) == 1
    assert unversioned("bot", 429) == 1  # refused before routing: no version
    assert unversioned("bot", 400) == 1  # invalid body, counted by the middleware
    limited_by = (("code", "rate_limit_exceeded"), ("route", "bot"))
    assert values[("modelyard_rate_limit_rejections_total", limited_by)] == 1
    assert values[("modelyard_pii_detections_total", (("entity", "EMAIL"),))] == 1
    chat = (("gen_ai_operation_name", "chat"), ("route", "bot"), ("version", "bot@1"))
    assert values[("gen_ai_server_request_duration_seconds_count", chat)] == 6
    assert values[("gen_ai_server_time_to_first_token_seconds_count", chat)] == 6
    output = (
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_token_type", "output"),
        ("route", "bot"),
        ("version", "bot@1"),
    )
    assert values[("gen_ai_client_token_usage_sum", output)] == 6 * 3
    assert values[("modelyard_requests_in_flight", ())] == 1  # the scrape itself
    assert ("modelyard_request_log_written_rows_total", ()) in values
    for name, labels in values:
        assert not {"key_id", "key", "user", "prompt"} & {k for k, _ in labels}, name


@pytest.mark.anyio
async def test_every_response_carries_its_request_id_and_overhead(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "bot", replies=["ok"], token_delay_ms=50)
    await api.reload_routes()
    developer = await new_key(api)
    answers = [
        await api.post("/v1/chat/completions", json=ASK, headers=bearer(developer)),
        await api.post("/v1/chat/completions", json={**ASK, "stream": True}),
        await api.get("/healthz"),
        await api.get("/api/models"),
        await api.get("/nowhere"),
        await api.get("/api/models", headers={"authorization": ""}),
    ]
    ids = [a.headers["x-modelyard-request-id"] for a in answers]
    assert len(set(ids)) == len(ids) and all(i.startswith("req_") for i in ids)
    for answer in answers:
        assert float(answer.headers["x-modelyard-overhead-ms"]) >= 0
    # The engine's 50 ms per token is not overhead.
    assert float(answers[0].headers["x-modelyard-overhead-ms"]) < 50
    await api.logged()
    rows = (await api.get("/api/requests")).json()["data"]
    logged = {r["id"]: r for r in rows}
    assert set(ids[:2]) <= set(logged)
    first = logged[ids[0]]
    assert first["overhead_ms"] is not None and first["overhead_ms"] < first["latency_ms"]
