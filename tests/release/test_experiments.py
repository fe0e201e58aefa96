"""A/B experiments on scripted engines: a fixed split, sequential results with lift and
interval, guardrails, SRM and stop rules."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from scipy import stats

from modelyard.release.protocol import ExperimentOut
from tests.conftest import AppClient, register_scripted
from tests.release.test_rollouts import drive

pytestmark = pytest.mark.anyio


def experiment(**fields: Any) -> dict[str, Any]:
    return {
        "name": "ab1",
        "model": "chat",
        "variants": [
            {"name": "control", "version": 1, "weight": 50},
            {"name": "treatment", "version": 2, "weight": 50},
        ],
        "primary": {"name": "error_rate"},
        "min_samples": 50,
        "planned_samples": 1000,
        "interval_s": 0.05,
        **fields,
    }


async def analyse_until_stopped(api: AppClient, name: str, batch: int, limit: int) -> ExperimentOut:
    sent = 0
    out = api.services.experiments.get(name)
    while out.status == "running" and sent < limit:
        await drive(api, batch)
        sent += batch
        await asyncio.sleep(0.06)
        out = api.services.experiments.analyse(name)
    return out


async def test_a_worse_treatment_is_found_with_its_lift_and_interval(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat", replies=["a"], fail_rate=0.02, seed=1)
    register_scripted(
        api.services.registry, "chat", alias="b", replies=["b"], fail_rate=0.12, seed=2
    )
    await api.reload_routes()
    response = await api.post("/api/experiments", json=experiment())
    assert response.status_code == 201, response.text
    seen = await drive(api, 400)
    shares = Counter(variant for variant, _ in seen.elements())
    assert set(shares) == {"control", "treatment"}
    assert stats.binomtest(shares["treatment"], 400, 0.5).pvalue > 0.001
    out = await analyse_until_stopped(api, "ab1", batch=200, limit=3000)
    assert out.status == "stopped" and out.message.startswith("primary metric decided")
    comparison = out.result["comparisons"][0]
    primary = comparison["primary"]
    assert comparison["verdict"] == "worse" and comparison["significant"]
    assert primary["low"] > 0 and primary["candidate"] > primary["baseline"]
    # The relative lift comes with its own (delta-method) interval around it; with a 2%
    # baseline it is wide, which is why the decision rests on the difference.
    assert primary["lift"] == pytest.approx(primary["candidate"] / primary["baseline"] - 1)
    assert primary["lift_low"] < primary["lift"] < primary["lift_high"]
    assert out.result["srm"]["mismatch"] is False
    # Stopping ends the split and keeps the result; the alias never moved.
    await api.reload_routes()
    assert api.services.routing.policy("chat") is None
    aliases = {a.name: a.version for a in api.services.registry.model("chat").aliases}
    assert aliases["production"] == 1
    measurements = (await api.get("/api/experiments/ab1/measurements")).json()["data"]
    assert len(measurements) >= 1 and measurements[-1]["outcome"] == "Successful"


async def test_a_planned_experiment_decides_by_group_sequential_tests(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat", replies=["a"], fail_rate=0.02, seed=1)
    register_scripted(
        api.services.registry, "chat", alias="b", replies=["b"], fail_rate=0.12, seed=2
    )
    await api.reload_routes()
    spec = experiment(stop={"max_samples": 1500})
    assert (await api.post("/api/experiments", json=spec)).status_code == 201
    out = await analyse_until_stopped(api, "ab1", batch=200, limit=3000)
    assert out.status == "stopped" and out.message.startswith("primary metric decided")
    assert out.result["test"] == "group_sequential"
    comparison = out.result["comparisons"][0]
    primary = comparison["primary"]
    assert comparison["verdict"] == "worse" and primary["outcome"] == "Failed"
    assert primary["test"] == "group_sequential"
    assert primary["worse_z"] >= primary["worse_look"]["bound"]
    # Each look continues the earlier ones: the spent alpha grows, never past alpha / 2.
    measurements = (await api.get("/api/experiments/ab1/measurements")).json()["data"]
    spent = [
        m["data"]["comparisons"][0]["primary"]["worse_look"]["spent"]
        for m in measurements
        if m["data"]["comparisons"][0]["primary"]["worse_look"] is not None
    ]
    assert spent == sorted(spent) and 0 < spent[-1] <= 0.025


async def test_a_guardrail_stops_an_experiment(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat", replies=["a"])
    register_scripted(
        api.services.registry, "chat", alias="b", replies=["b"], fail_rate=0.3, seed=3
    )
    await api.reload_routes()
    spec = experiment(
        primary={"name": "positive_feedback_rate"},
        guardrails=[{"name": "error_rate"}],
    )
    assert (await api.post("/api/experiments", json=spec)).status_code == 201
    out = await analyse_until_stopped(api, "ab1", batch=200, limit=2000)
    assert out.status == "stopped" and "guardrail failed: treatment: error_rate" in out.message


async def test_experiments_refuse_what_they_cannot_run(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat")
    register_scripted(api.services.registry, "chat", alias="b")
    await api.reload_routes()
    swapped = experiment(
        variants=[
            {"name": "control", "version": 2, "weight": 50},
            {"name": "treatment", "version": 1, "weight": 50},
        ]
    )
    refused = await api.post("/api/experiments", json=swapped)
    assert refused.status_code == 400 and "control variant" in refused.json()["error"]["message"]
    uneven = experiment(
        variants=[
            {"name": "control", "version": 1, "weight": 50},
            {"name": "treatment", "version": 2, "weight": 40},
        ]
    )
    assert (await api.post("/api/experiments", json=uneven)).status_code in (400, 422)
    unplanned = await api.post("/api/experiments", json=experiment(test="group_sequential"))
    assert unplanned.status_code == 400 and "stop.max_samples" in unplanned.text
    assert (await api.post("/api/experiments", json=experiment())).status_code == 201
    duplicate = await api.post("/api/experiments", json=experiment())
    assert duplicate.status_code == 409
    stopped = await api.post("/api/experiments/ab1/stop", json={"reason": "enough"})
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert (await api.post("/api/experiments/ab1/stop")).status_code == 409
    assert (await api.get("/api/experiments/nope")).status_code == 404
