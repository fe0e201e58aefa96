"""The overhead benchmark's pure parts (bench/overhead_parts): its statistics, verdicts and
tables, the request-log check of the soak, the fake upstream's answers, and
``--modelyard-rev``'s pieces (target names, exporting a revision, the comparison). Fast:
nothing is started but one in-process aiohttp server, git and a Python that imports a stub."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.overhead_parts import revisions, stats, upstream
from bench.overhead_parts.loadgen import check_answer, request_body


def test_percentile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.percentile(values, 50) == 2.5
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 100) == 4.0
    assert stats.percentile(values, 99) == pytest.approx(3.97)
    assert stats.percentile([7.0], 99) == 7.0
    assert math.isnan(stats.percentile([], 50))


def test_summarise_counts_only_requests_ending_in_the_window() -> None:
    records = [
        [0.0, 0.5, 200, None, 0],  # ends in the warm-up: ignored
        [0.9, 1.001, 200, None, 1],
        [1.5, 1.502, 200, None, 2],
        [2.0, 2.010, 502, "http_502", 3],
        [2.5, 3.5, 200, None, 4],  # ends after the window: ignored
    ]
    result = stats.summarise(records, warmup_s=1.0, duration_s=2.0, unfinished=1)
    assert (result.requests, result.ok, result.errors, result.unfinished) == (3, 2, 1, 1)
    assert result.rps == 1.0
    assert result.error_rate == pytest.approx(1 / 3)
    assert result.error_kinds == {"http_502": 1}
    assert result.latency_ms["min"] == pytest.approx(2.0)
    assert result.latency_ms["max"] == pytest.approx(101.0)
    assert result.latency_ms["p50"] == pytest.approx(51.5)


def test_a_step_where_everything_hung_is_not_error_free() -> None:
    result = stats.summarise([], warmup_s=1.0, duration_s=2.0, unfinished=200)
    assert result.error_rate == 1.0
    assert result.rps == 0.0
    assert math.isnan(result.latency_ms["p50"])
    assert stats.summarise([], warmup_s=1.0, duration_s=2.0).error_rate == 0.0


def step(
    target: str,
    concurrency: int,
    rps: float,
    p50: float,
    p99: float,
    *,
    rep: int = 1,
    stream: bool = False,
    error_rate: float = 0.0,
    harness_bound: bool = False,
    server_cpu_cores: float = 0.9,
) -> dict[str, Any]:
    result = stats.StepStats(
        window_s=8.0,
        requests=100,
        ok=100,
        errors=round(100 * error_rate),
        unfinished=0,
        rps=rps,
        error_rate=error_rate,
        latency_ms={"p50": p50, "p99": p99},
    )
    return stats.step_row(
        target,
        rep,
        stream,
        concurrency,
        result,
        cpu_busy_pct=[90.0, 40.0],
        server_cpu_cores=server_cpu_cores,
        harness_bound=harness_bound,
    )


def sample_steps() -> list[dict[str, Any]]:
    steps = []
    for rep, shift in ((1, 0.0), (2, 0.2)):
        for stream in (False, True):
            steps += [
                step("direct", 1, 2000, 0.4, 0.6, rep=rep, stream=stream),
                step("direct", 50, 3000, 10, 20, rep=rep, stream=stream),
                step("modelyard", 1, 400, 1.4 + shift, 3.6 + shift, rep=rep, stream=stream),
                step("modelyard", 50, 900, 50, 90, rep=rep, stream=stream),
                # Faster, but with 2 % errors: not sustained.
                step("modelyard", 200, 1200, 90, 300, rep=rep, stream=stream, error_rate=0.02),
                step("floor", 1, 1200, 0.7, 1.0, rep=rep, stream=stream),
                # The load generator's core was full: the floor may be faster than this.
                step("floor", 50, 1600, 20, 40, rep=rep, stream=stream, harness_bound=True),
            ]
    return steps


def test_max_sustained_ignores_steps_with_one_percent_errors_or_more() -> None:
    steps = sample_steps()
    assert stats.max_sustained(s for s in steps if s["target"] == "modelyard") == 900
    assert stats.max_sustained([step("x", 1, 50, 1, 1, error_rate=0.01)]) is None
    assert stats.max_sustained([step("x", 1, 50, 1, 1, error_rate=0.0099)]) == 50


def test_summary_subtracts_direct_in_the_same_run_and_keeps_the_best_run() -> None:
    rss = {"modelyard": {"before": 120.0, "after": 140.0}}
    steps = sample_steps()
    steps.append(step("floor", 10, 1900, 5, 9, rep=2))  # run 2 of the floor peaks higher
    summary = stats.summary(steps, ["direct", "modelyard", "floor"], rss)
    mine = summary["modelyard"]["non_stream"]
    assert mine["added_by_rep"] == {1: {"p50": 1.0, "p99": 3.0}, 2: {"p50": 1.2, "p99": 3.2}}
    assert mine["added_p50_ms"] == pytest.approx(1.0)
    assert mine["added_p99_ms"] == pytest.approx(3.0)
    assert mine["added_p50_ms_mean"] == pytest.approx(1.1)
    assert mine["max_rps"] == 900
    floor = summary["floor"]["non_stream"]
    assert floor["max_rps_by_rep"] == {1: 1600, 2: 1900}
    assert (floor["max_rps"], floor["max_rps_mean"]) == (1900, 1750)
    assert summary["modelyard"]["rss_mib"] == {"before": 120.0, "after": 140.0}


def test_verdicts_say_met_short_by_or_why_not_measured() -> None:
    summary = stats.summary(
        sample_steps(),
        ["direct", "modelyard", "floor"],
        {"modelyard": {"before": 150.0, "after": 162.5}},
    )
    found = {v.name: v for v in stats.verdicts(summary, {"litellm": "pip install failed"})}
    p50 = found["added latency p50 @1 client, non-streaming"]
    assert p50.met is True and p50.text == "target met"
    assert p50.context == "floor adds 0.30 ms"
    floor_ratio = found["max sustained rps, streaming: modelyard / floor"]
    assert floor_ratio.measured == pytest.approx(900 / 1600)
    assert floor_ratio.text == "target met"
    assert floor_ratio.context == "900 vs 1,600 rps (theirs harness-bound*)"
    litellm = found["max sustained rps, non-streaming: modelyard / litellm"]
    assert litellm.met is None
    assert litellm.text == "not measured (litellm skipped: pip install failed)"
    memory = found["RSS of the modelyard worker after load (no embedded model)"]
    assert memory.met is False and memory.text == "short by 12.5 MiB"
    assert stats.Verdict("ratio", 7.5, 10.0, ">=", "x").text == "short by 2.50 x"
    assert json.dumps(memory.as_dict())  # JSON-ready


def test_tables_render_every_target_and_verdict() -> None:
    from rich.console import Console

    steps = sample_steps()
    targets = ["direct", "modelyard", "floor"]
    summary = stats.summary(steps, targets, {})
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    console.print(stats.steps_table(steps, targets))
    console.print(stats.summary_table(summary, {"litellm": "offline"}))
    found = stats.verdicts(summary, {"litellm": "offline"})
    console.print(stats.verdict_table(found))
    text = out.getvalue()
    assert "docs/performance.md" not in text  # nothing short: no pointer to the profile
    short = io.StringIO()
    with_short = [*found, stats.Verdict("ratio", 7.5, 10.0, ">=", "x")]
    Console(file=short, width=200, color_system=None).print(stats.verdict_table(with_short))
    assert "docs/performance.md" in short.getvalue()  # a short target points at it
    assert "1,200 / 1,200" in text  # the 200-client step's rps, each run
    assert "1,600* / 1,600*" in text  # harness-bound steps are marked
    assert "2.00%" in text  # its error rate
    assert "skipped: offline" in text
    assert "target met" in text and "not measured" in text


def test_log_check_finds_missing_duplicated_and_unknown_rows() -> None:
    sent = [f"soak-{i}" for i in range(5)]
    good = stats.log_check(sent, {u: 1 for u in sent})
    assert good["exactly_once"] and good["logged_once"] == 5
    bad = stats.log_check(sent, {"soak-0": 1, "soak-1": 2, "soak-2": 1, "soak-3": 1, "x": 1})
    assert not bad["exactly_once"]
    assert (bad["missing"], bad["duplicated"], bad["unknown"]) == (1, 1, 1)
    assert bad["missing_examples"] == ["soak-4"]
    assert bad["logged_rows"] == 6


def test_fake_upstream_answers_like_openai() -> None:
    body = upstream.completion_body("m")
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == upstream.REPLY
    assert body["usage"]["total_tokens"] == upstream.PROMPT_TOKENS + upstream.COMPLETION_TOKENS
    assert check_answer(json.dumps(body).encode(), stream=False) is None

    frames = upstream.stream_events("m", include_usage=True)
    assert all(f.startswith(b"data: ") and f.endswith(b"\n\n") for f in frames)
    assert frames[-1] == b"data: [DONE]\n\n"
    events = [json.loads(f[6:]) for f in frames[:-1]]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == upstream.REPLY
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "stop"
    assert events[-1]["usage"]["completion_tokens"] == upstream.COMPLETION_TOKENS
    assert check_answer(b"".join(frames), stream=True) is None
    plain = upstream.stream_events("m", include_usage=False)
    assert len(plain) == len(frames) - 1
    assert not any(b'"usage"' in f for f in plain)


def test_load_generator_checks_answers() -> None:
    frames = upstream.stream_events("m", include_usage=False)
    assert check_answer(b"".join(frames[:-1]), stream=True) == "truncated_stream"
    assert check_answer(b'data: {"error": {}}\n\ndata: [DONE]\n\n', stream=True) == (
        "stream_error_event"
    )
    assert check_answer(b'{"detail": "no"}', stream=False) == "bad_body"
    body = json.loads(request_body("bench", stream=True, user="u-1"))
    assert body["stream"] is True and body["user"] == "u-1"
    assert upstream.PII_MARKER.decode() in body["messages"][1]["content"]


@pytest.mark.anyio
async def test_fake_upstream_serves_both_modes_and_counts() -> None:
    pytest.importorskip("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(upstream.build_app())) as client:
        plain = await client.post(
            "/v1/chat/completions", data=request_body("m", stream=False, user="a")
        )
        assert plain.status == 200
        assert (await plain.json())["choices"][0]["message"]["content"] == upstream.REPLY
        body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
        streamed = await client.post("/v1/chat/completions", json=body)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        data = await streamed.read()
        assert data == b"".join(upstream.stream_events("m", include_usage=True))
        models = await (await client.get("/v1/models")).json()
        assert models["data"][0]["id"] == "bench-upstream"
        counted = await (await client.get("/stats")).json()
        assert counted == {"requests": 2, "streamed": 1, "prompts_with_pii": 1}


# --- --modelyard-rev: a revision's modelyard next to the working tree's ---------------------


def test_revision_targets_are_named_and_run_next_to_modelyard() -> None:
    name = revisions.target_name("7ad487d")
    assert name == "modelyard@7ad487d"
    assert revisions.is_modelyard(name) and revisions.is_modelyard("modelyard")
    assert not revisions.is_modelyard("floor")
    everything = ("direct", "modelyard", "litellm", "floor")
    assert revisions.with_revisions(everything, [name, "modelyard@abc1234"]) == (
        "direct",
        "modelyard",
        name,
        "modelyard@abc1234",
        "litellm",
        "floor",
    )
    assert revisions.with_revisions(("direct", "floor"), [name]) == ("direct", "floor", name)
    assert revisions.with_revisions(everything, []) == everything


def test_revision_source_comes_first_and_the_log_says_where_modelyard_came_from(
    tmp_path: Path,
) -> None:
    env = revisions.with_pythonpath({"PYTHONPATH": "/elsewhere", "X": "1"}, tmp_path / "src")
    assert env == {"PYTHONPATH": f"{tmp_path / 'src'}{os.pathsep}/elsewhere", "X": "1"}
    assert revisions.with_pythonpath({}, tmp_path)["PYTHONPATH"] == str(tmp_path)
    log = f"$ taskset -c 0 python -P -c ...\n{revisions.IMPORTED_FROM}{tmp_path}/m/__init__.py\n"
    found = revisions.imported_from(log)
    assert found == tmp_path / "m" / "__init__.py"
    assert revisions.inside(found, tmp_path) and not revisions.inside(found, tmp_path / "x")
    assert revisions.imported_from("INFO: started\n") is None


def test_a_revision_is_exported_and_imported_ahead_of_the_editable_install(
    tmp_path: Path,
) -> None:
    """A throwaway repository whose ``src/modelyard`` is a stub: ``export`` writes that
    commit's source, and a Python started the way the benchmark starts the revision's server
    imports it, not the working tree's editable install."""
    repo = tmp_path / "repo"
    (repo / "src" / "modelyard").mkdir(parents=True)
    (repo / "src" / "modelyard" / "__init__.py").write_text("REVISION = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (repo / "src" / "modelyard" / "__init__.py").write_text("REVISION = 2\n")  # uncommitted
    revision = revisions.export(repo, "HEAD", tmp_path / "work")
    assert revision.name == f"modelyard@{revision.short}"
    assert revision.commit.startswith(revision.short) and len(revision.commit) == 40
    assert (revision.src / "modelyard" / "__init__.py").read_text() == "REVISION = 1\n"
    env = revisions.with_pythonpath(dict(os.environ), revision.src)
    found = revisions.check_import(sys.executable, env, revision)
    assert found == revision.src / "modelyard" / "__init__.py"
    with pytest.raises(revisions.RevisionError, match="not from"):  # without PYTHONPATH
        revisions.check_import(sys.executable, dict(os.environ), revision)
    with pytest.raises(revisions.RevisionError, match="unknown git revision"):
        revisions.export(repo, "no-such-rev", tmp_path / "work")


def revision_steps(reps: int) -> list[dict[str, Any]]:
    """direct, the working tree and a revision; the working tree 5 % slower at 50 clients
    and 0.1 ms slower at 1 client; run 2 a little slower than run 1 for both."""
    steps = []
    for rep in range(1, reps + 1):
        slow = 0.9 if rep == 2 else 1.0  # run 2: 10 % fewer rps, 0.2 ms more latency
        extra = 0.2 if rep == 2 else 0.0
        for stream in (False, True):
            steps += [
                step("direct", 1, 2000, 0.4, 0.6, rep=rep, stream=stream),
                step("direct", 50, 3000, 10, 20, rep=rep, stream=stream),
                step("modelyard", 1, 500 * slow, 1.5 + extra, 3.6 + extra, rep=rep, stream=stream),
                step("modelyard", 50, 950 * slow, 50, 90, rep=rep, stream=stream),
                step("modelyard@abc1234", 1, 500 * slow, 1.4 + extra, 3.6, rep=rep, stream=stream),
                step("modelyard@abc1234", 50, 1000 * slow, 48, 85, rep=rep, stream=stream),
            ]
    for s in steps:  # other processes were busier during the revision's steps of run 2
        s["others_cores"] = 0.3 if s["target"] == "modelyard@abc1234" and s["rep"] == 2 else 0.05
    return steps


def test_the_working_tree_is_compared_with_a_revision_within_the_spread() -> None:
    steps = revision_steps(2)
    targets = ["direct", "modelyard", "modelyard@abc1234"]
    summary = stats.summary(steps, targets, {})
    found = stats.compare(steps, summary, "modelyard@abc1234")
    rows = {(c.stream, c.measure): c for c in found}
    assert [c.measure for c in found if not c.stream] == [
        "rps @1 client",
        "rps @50 clients",
        "requests per server CPU-s @50",
        "max sustained rps",
        "added p50 @1 client",
        "added p99 @1 client",
    ]
    per_cpu = rows[(False, "requests per server CPU-s @50")]
    assert (per_cpu.ours, per_cpu.theirs) == (pytest.approx(950 / 0.9), pytest.approx(1000 / 0.9))
    at_50 = rows[(False, "rps @50 clients")]
    assert (at_50.ours, at_50.theirs) == (950, 1000)
    assert at_50.value == pytest.approx(0.95)
    assert at_50.spread == pytest.approx(0.1)  # both targets' runs differ by 10 %
    assert at_50.worse is False and at_50.text == "within the spread"
    assert at_50.context == "runs 950/855 vs 1,000/900"
    assert at_50.others_cores == ({1: 0.05, 2: 0.05}, {1: 0.05, 2: 0.3})  # each run
    p50 = rows[(True, "added p50 @1 client")]
    assert (p50.ours, p50.theirs) == (pytest.approx(1.1), pytest.approx(1.0))
    assert p50.value == pytest.approx(0.1)
    assert p50.spread == pytest.approx(0.2)
    assert p50.worse is False
    p99 = rows[(False, "added p99 @1 client")]
    assert p99.value == pytest.approx(0.0)
    assert p99.spread == pytest.approx(0.2)  # the larger of 0.2 (ours) and 0 (theirs)
    assert json.dumps([c.as_dict() for c in found])  # JSON-ready
    # Beyond the spread, either way.
    slower = stats.Comparison("modelyard", "r", False, "rps", 80, 100, 0.8, "x", 0.1, 2)
    assert slower.worse is True and slower.text == "slower by 10.0% beyond the spread"
    faster = stats.Comparison("modelyard", "r", False, "rps", 120, 100, 1.2, "x", 0.1, 2)
    assert faster.worse is False and faster.text == "faster beyond the spread"
    later = stats.Comparison("modelyard", "r", False, "p99", 3.0, 2.0, 1.0, "ms", 0.25, 2)
    assert later.worse is True and later.text == "worse by 0.75 ms beyond the spread"
    sooner = stats.Comparison("modelyard", "r", False, "p99", 1.0, 2.0, -1.0, "ms", 0.25, 2)
    assert sooner.worse is False and sooner.text == "better beyond the spread"


def test_one_run_has_no_spread_and_a_missing_target_is_not_measured() -> None:
    steps = revision_steps(1)
    summary = stats.summary(steps, ["direct", "modelyard", "modelyard@abc1234"], {})
    found = stats.compare(steps, summary, "modelyard@abc1234")
    assert all(c.spread is None and c.worse is None for c in found)
    assert found[0].text == "1 run: no spread (--reps 2+)"
    assert found[1].value == pytest.approx(0.95)  # the ratio is still there
    gone = [s for s in steps if s["target"] != "modelyard"]
    summary = stats.summary(gone, ["direct", "modelyard@abc1234"], {})
    assert {c.text for c in stats.compare(gone, summary, "modelyard@abc1234")} == {"not measured"}


def test_comparison_table_shows_both_targets_and_the_spread() -> None:
    from rich.console import Console

    for reps, note in ((2, "within the spread"), (1, "give --reps 2 or more to judge")):
        steps = revision_steps(reps)
        targets = ["direct", "modelyard", "modelyard@abc1234"]
        summary = stats.summary(steps, targets, {})
        out = io.StringIO()
        console = Console(file=out, width=220, color_system=None)
        console.print(stats.steps_table(steps, targets))
        console.print(stats.summary_table(summary, {}))
        console.print(stats.comparison_table(stats.compare(steps, summary, "modelyard@abc1234")))
        text = out.getvalue()
        assert "modelyard (working tree) vs modelyard@abc1234" in text
        assert "0.950x" in text and "+0.10 ms" in text
        assert note in text
        assert text.count("modelyard@abc1234") >= 5  # steps and summary rows too
        assert ("±10.0%" in text) == (reps == 2)
        assert ("0.05/0.05 vs 0.05/0.30" in text) == (reps == 2)


def test_a_tools_target_is_set_against_the_upstream_answering_tool_requests() -> None:
    steps = [
        step("direct", 1, 2000, 0.4, 0.6),
        step("direct+tools", 1, 1900, 0.5, 0.8),
        step("modelyard", 1, 400, 1.4, 3.6),
        step("modelyard+tools", 1, 380, 1.6, 3.9),
    ]
    by_rep = stats.added_latency_by_rep(steps, "modelyard+tools", stream=False)
    assert by_rep == {1: {"p50": pytest.approx(1.1), "p99": pytest.approx(3.1)}}
    assert stats.added_latency_by_rep(steps, "modelyard", stream=False)[1]["p50"] == 1.0


def test_the_tools_body_carries_tools_and_extra_fields() -> None:
    plain = json.loads(request_body("bench", stream=False, user="u-1"))
    tools = json.loads(request_body("bench", stream=True, user="u-1", kind="tools"))
    assert "tools" not in plain and "top_k" not in plain
    assert [t["function"]["name"] for t in tools["tools"]] == ["get_invoice", "send_mail"]
    assert tools["tool_choice"] == "auto" and tools["top_k"] == 20
    assert tools["messages"] == plain["messages"] and tools["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("user", ["u-1", "modelyard+padded-2-stream-50-123456"])
def test_the_padded_body_is_a_plain_request_as_large_as_the_tools_one(
    stream: bool, user: str
) -> None:
    tools = request_body("bench", stream=stream, user=user, kind="tools")
    padded = request_body("bench", stream=stream, user=user, kind="padded")
    plain = json.loads(request_body("bench", stream=stream, user=user))
    assert len(padded) == len(tools) > len(json.dumps(plain, separators=(",", ":")))
    body = json.loads(padded)
    assert set(body) == set(plain)
    system = body["messages"][0]["content"]
    assert system.startswith(plain["messages"][0]["content"]) and len(system) > 200
    assert body["messages"][1] == plain["messages"][1]


def test_an_unknown_body_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown body kind 'huge'"):
        request_body("bench", stream=False, user="u-1", kind="huge")


def test_a_target_name_splits_into_server_and_body() -> None:
    assert stats.split_target("modelyard+tools") == ("modelyard", "tools")
    assert stats.split_target("direct+padded") == ("direct", "padded")
    assert stats.split_target("modelyard@abc1234") == ("modelyard@abc1234", "plain")


def test_a_padded_target_is_set_against_the_upstream_answering_padded_requests() -> None:
    steps = [
        step("direct", 1, 2000, 0.4, 0.6),
        step("direct+padded", 1, 1950, 0.45, 0.7),
        step("modelyard+padded", 1, 390, 1.5, 3.8),
    ]
    by_rep = stats.added_latency_by_rep(steps, "modelyard+padded", stream=False)
    assert by_rep == {1: {"p50": pytest.approx(1.05), "p99": pytest.approx(3.1)}}


def test_requests_per_cpu_second_tell_a_costlier_request_from_a_busier_machine() -> None:
    # Both runs of the subject lost rps to other work, but its CPU per request is what the
    # baseline's is: the per-CPU-second figure says so, the rps figure cannot.
    steps = [
        step("modelyard+tools", 50, rps, 1.0, 2.0, rep=rep, server_cpu_cores=cores)
        for rep, rps, cores in ((1, 800, 0.8), (2, 850, 0.85))
    ] + [
        step("modelyard+padded", 50, rps, 1.0, 2.0, rep=rep, server_cpu_cores=cores)
        for rep, rps, cores in ((1, 1000, 1.0), (2, 990, 0.99))
    ]
    summary = stats.summary(steps, ["modelyard+tools", "modelyard+padded"], {})
    found = stats.compare(steps, summary, "modelyard+padded", "modelyard+tools")
    rows = {c.measure: c for c in found if not c.stream}
    assert rows["rps @50 clients"].value == pytest.approx(0.85)
    assert rows["rps @50 clients"].worse is True
    per_cpu = rows["requests per server CPU-s @50"]
    assert per_cpu.value == pytest.approx(1.0) and per_cpu.worse is False
    # A step with errors has no figure.
    steps[0] = step("modelyard+tools", 50, 800, 1.0, 2.0, rep=1, error_rate=0.05)
    again = stats.compare(steps, summary, "modelyard+padded", "modelyard+tools")
    assert stats.per_cpu_second_by_rep(steps, "modelyard+tools", False, 50)[1] is None
    assert {c.measure: c for c in again if not c.stream}["requests per server CPU-s @50"].reps == 2
