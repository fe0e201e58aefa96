"""Drift reports from the request log: the API, the CLI and the console page."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.observe.requestlog import RequestRecord
from tests.conftest import AppClient

pytestmark = pytest.mark.anyio
ENGLISH = ["How do I reset my password?", "What are your opening hours?", "Cancel my order"]
CHINESE = ["我的银行卡被冻结了怎么办？", "请问怎么修改收货地址", "为什么我的转账还没有到账"]


def records(
    route: str, start: datetime, hours: float, n: int, chinese: bool, seed: int
) -> list[RequestRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = rng.choice(CHINESE if chinese else ENGLISH) + f" #{rng.randint(0, 999)}"
        out.append(
            RequestRecord(
                id=f"{route}-{seed}-{i}",
                at=start + timedelta(hours=hours * i / n),
                key_id="k",
                endpoint="chat.completions",
                route=route,
                version=f"{route}@1",
                status=200,
                error_code=None,
                latency_ms=rng.gauss(400 if chinese else 100, 20),
                prompt_tokens=rng.randint(40, 60) if chinese else rng.randint(8, 14),
                completion_tokens=rng.randint(20, 40),
                content={"messages": [{"role": "user", "content": prompt}], "response": "ok"},
            )
        )
    return out


async def test_a_shifted_route_drifts_and_a_steady_one_does_not(api: AppClient) -> None:
    now = datetime.now(UTC)
    current_from, reference_from = now - timedelta(hours=24), now - timedelta(days=8)
    rows = [
        *records("support", reference_from, 7 * 24, 120, chinese=False, seed=1),
        *records("support", current_from, 23, 80, chinese=True, seed=2),
        *records("steady", reference_from, 7 * 24, 120, chinese=False, seed=3),
        *records("steady", current_from, 23, 80, chinese=False, seed=4),
    ]
    for row in rows:
        api.services.request_log.submit(row)
    await api.logged()

    shifted = (await api.post("/api/drift/run", json={"route": "support"})).json()["data"][0]
    assert shifted["drifted"] is True
    columns = {c["column"]: c for c in shifted["report"]["columns"]}
    assert set(columns) == {
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "language",
        "prompt",
    }
    assert columns["language"]["drifted"] and columns["prompt"]["drifted"]
    assert columns["prompt_tokens"]["test"] == "ks" and columns["prompt_tokens"]["drifted"]
    assert not columns["completion_tokens"]["drifted"]
    steady = (await api.post("/api/drift/run", json={"route": "steady"})).json()["data"][0]
    assert steady["drifted"] is False
    assert not {c["column"] for c in steady["report"]["columns"] if c["drifted"]} & {
        "language",
        "prompt",
    }
    thin = await api.post("/api/drift/run", json={"route": "nothing-here"})
    assert thin.status_code == 400 and thin.json()["error"]["code"] == "not_enough_data"

    listed = (await api.get("/api/drift?route=support")).json()["data"]
    assert [r["id"] for r in listed] == [shifted["id"]]
    page = (await api.get("/ui/drift")).text
    assert f'href="/ui/drift/{shifted["id"]}"' in page and "drifted" in page
    detail = (await api.get(f"/ui/drift/{shifted['id']}")).text
    assert "language" in detail and columns["language"]["test"] in detail

    # Every active route at once, as the schedule does; the CLI shows the same reports.
    everything = (await api.post("/api/drift/run", json={})).json()["data"]
    assert sorted(r["route"] for r in everything) == ["steady", "support"]
    cli = CliRunner().invoke(main, ["drift", "list", "--route", "support", "--json"])
    assert cli.exit_code == 0, cli.output
    assert len(json.loads(cli.output)) == 2
    shown = CliRunner().invoke(main, ["drift", "show", str(shifted["id"]), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["report"] == shifted["report"]
    table = CliRunner().invoke(main, ["drift", "show", str(shifted["id"])])
    assert table.exit_code == 0 and "drifted (" in table.output
