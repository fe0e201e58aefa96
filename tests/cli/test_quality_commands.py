"""``modelyard route judge`` sets a route's live judge (the rest of its policy kept) and
``modelyard quality show|judgements`` read the judged samples from the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.observe.quality.judgements import LiveJudgementRecord, LiveJudgements
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted


def run(*args: str, code: int = 0) -> str:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_route_judge_sets_changes_and_turns_off_live_judging(home_registry: Registry) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "judge")
    run("route", "cache", "chat")
    said = run("route", "judge", "chat", "--judge", "judge", "--share", "0.1")
    assert "10% of answers judged by judge on 1-5" in said
    run("route", "judge", "chat", "--rubric", "Polite?", "--scale", "0", "10")
    policy = json.loads(run("route", "show", "chat", "--json"))["policy"]
    assert policy["live_judge"] == {
        "judge": "judge",
        "share": 0.1,
        "rubric": "Polite?",
        "scale": [0, 10],
        "max_per_minute": 60,
        "max_cost_per_day": None,
    }
    assert policy["cache"]["mode"] == "exact"  # the rest of the policy stays
    assert "share" in run("route", "judge", "chat", "--share", "2", code=1)
    assert "'nobody'" in run("route", "judge", "chat", "--judge", "nobody", code=1)
    assert "live judging off" in run("route", "judge", "chat", "--off")
    assert json.loads(run("route", "show", "chat", "--json"))["policy"]["live_judge"] is None


def test_quality_show_and_judgements_read_the_store(home_registry: Registry) -> None:
    store = open_store(Settings().store_url)
    judgements = LiveJudgements(store)
    now = datetime.now(UTC)
    for index, (version, quality) in enumerate(
        [("chat@1", 1.0), ("chat@1", 0.5), ("chat@2", 0.25), ("chat@2", None)]
    ):
        judgements.save(
            LiveJudgementRecord(
                request_id=f"r{index}",
                judge_request_id=f"r{index}.judge",
                route="chat",
                version=version,
                variant=None,
                judge="judge@1",
                score=None if quality is None else 1 + 4 * quality,
                quality=quality,
                scale=(1, 5),
                error=None if quality is not None else "no score",
                latency_ms=3.0,
                cost=0.0,
                at=now - timedelta(minutes=index),
            )
        )
    store.close()
    shown = json.loads(run("quality", "show", "--route", "chat", "--hours", "1", "--json"))
    means = {s["version"]: (s["judged"], s["unscored"], s["mean"]) for s in shown["series"]}
    assert means == {"chat@1": (2, 0, 0.75), "chat@2": (1, 1, 0.25)}
    table = run("quality", "show", "--hours", "1")
    assert "chat@1" in table and "0.750" in table
    listed = run("quality", "judgements", "--version", "chat@2")
    assert "r2" in listed and "r3" in listed and "r0" not in listed
    refused = run("quality", "show", "--hours", "720", "--bucket", "60", code=1)
    assert "more than 2000 points" in refused
