"""``modelyard route``, ``rollout`` and ``experiment`` on this machine's store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.registry import Registry
from tests.conftest import register_scripted


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_route_set_show_history_and_clear(home_registry: Registry, tmp_path: Path) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "chat", alias="next")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "candidates: [{name: canary, version: 2, weight: 5}]\nshadows: [{version: 2, share: 10}]\n",
        encoding="utf-8",
    )
    assert "policy set" in run("route", "set", "chat", "-f", str(policy), "--reason", "try v2")
    shown = json.loads(run("route", "show", "chat", "--json"))
    assert shown["policy"]["candidates"] == [{"name": "canary", "version": 2, "weight": 5.0}]
    assert [p["model"] for p in json.loads(run("route", "list", "--json"))] == ["chat"]
    assert "route" in run("route", "list")
    history = json.loads(run("route", "history", "chat", "--json"))
    assert history[0]["reason"] == "try v2" and history[0]["before"] is None
    policy.write_text("candidates: [{name: canary, version: 7, weight: 5}]\n", encoding="utf-8")
    refused = run("route", "set", "chat", "-f", str(policy), code=1)
    assert "has no version 7" in refused
    policy.write_text("candidates: [{name: canary, version: 2, weight: 500}]\n", encoding="utf-8")
    assert "less than or equal to 100" in run("route", "set", "chat", "-f", str(policy), code=1)
    assert "cleared" in run("route", "clear", "chat")
    assert "no traffic policy" in run("route", "show", "chat", code=1)


def test_rollout_start_status_resume_and_abort(home_registry: Registry, tmp_path: Path) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "chat", alias="next")
    steps = tmp_path / "steps.yaml"
    steps.write_text("- set_weight: 25\n- pause: {}\n- set_weight: 50\n", encoding="utf-8")
    out = run("rollout", "start", "chat", "2", "--steps", str(steps), "--reason", "v2")
    assert "rollout 1: chat@2 against chat@1 started" in out
    status = json.loads(run("rollout", "status", "1", "--json"))
    assert status["rollout"]["status"] == "running" and status["rollout"]["step"] == 0
    assert "set weight 25%" in run("rollout", "status", "1")
    assert "rollout 1 is running, not paused" in run("rollout", "resume", "1", code=1)
    assert [r["id"] for r in json.loads(run("rollout", "list", "--json"))] == [1]
    assert "aborted" in run("rollout", "abort", "1", "--reason", "not today")
    assert "already aborted" in run("rollout", "promote", "1", code=1)
    assert "does not exist" in run("rollout", "status", "9", code=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- set_weight: 10\n  pause: {}\n", encoding="utf-8")
    assert "exactly one of" in run("rollout", "start", "chat", "2", "--steps", str(bad), code=1)


def test_experiment_start_status_and_stop(home_registry: Registry, tmp_path: Path) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "chat", alias="next")
    spec = tmp_path / "ab.yaml"
    spec.write_text(
        "name: ab1\nmodel: chat\n"
        "variants:\n"
        "  - {name: control, version: 1, weight: 50}\n"
        "  - {name: treatment, version: 2, weight: 50}\n"
        "primary: {name: positive_feedback_rate}\n"
        "guardrails: [{name: error_rate}]\n",
        encoding="utf-8",
    )
    assert "experiment 'ab1' started" in run("experiment", "start", "-f", str(spec))
    assert "no analysis yet" in run("experiment", "status", "ab1")
    listed = json.loads(run("experiment", "list", "--json"))
    assert [(e["name"], e["status"]) for e in listed] == [("ab1", "running")]
    assert "managed by experiment 1" in run("experiment", "start", "-f", str(spec), code=1)
    assert "stopped" in run("experiment", "stop", "ab1")
    assert "already stopped" in run("experiment", "stop", "ab1", code=1)


def test_rollout_plan_prints_what_each_analysis_detects(
    home_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # the table's cells unwrapped
    steps = tmp_path / "steps.yaml"
    steps.write_text(
        "- set_weight: 50\n"
        "- analysis: {interval_s: 15, count: 40, min_samples: 60, planned_samples: 400,\n"
        "    metrics: [{name: error_rate, margin: 0.05}, {name: latency, margin: 0.5}]}\n",
        encoding="utf-8",
    )
    shown = run("rollout", "plan", "chat", "2", "--steps", str(steps), "--rps", "1")
    planned = json.loads(
        run("rollout", "plan", "chat", "2", "--steps", str(steps), "--rps", "1", "--json")
    )
    assert planned["requests_per_s"] == 1 and planned["traffic_source"] == "given"
    (step,) = planned["steps"]
    assert "step 2: analysis at 50%" in shown
    for metric in step["metrics"]:
        assert metric["detectable_text"] in shown and metric["assumed"]
    assert "error_rate*" in shown and "baseline assumed" in shown
    # Without --rps the request log says: no traffic yet.
    empty = json.loads(run("rollout", "plan", "chat", "2", "--json"))
    assert empty["requests_per_s"] == 0 and empty["warnings"][0].startswith("no traffic")
    assert "! no traffic" in run("rollout", "plan", "chat", "2")
    assert "greater than 0" in run("rollout", "plan", "chat", "2", "--rps", "-1", code=1)
