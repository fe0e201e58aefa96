"""``modelyard eval run|list|show|report|compare|gate``: evaluation runs through the serving
path, their comparison, and gates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click
import httpx
import yaml
from rich.progress import Progress

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.config import Settings
from modelyard.evaluate.breakdown import breakdown, gate_values, load_breakdown, needs_breakdown
from modelyard.evaluate.compare import compare, gate, paired
from modelyard.evaluate.counterfactual import SWAPS
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.gates import GateResult, GateRule
from modelyard.evaluate.judges import Judgements, pairwise, summary
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.protocol import EvalRunOut
from modelyard.evaluate.report import report, request_costs, task_of
from modelyard.evaluate.robustness.gate import split_rules, with_robustness
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.tasks import load_task
from modelyard.evaluate.tasks.spec import CounterfactualSpec
from modelyard.guard.keys import read_admin_key
from modelyard.registry import Registry
from modelyard.services import local_actor
from modelyard.store import Store


@click.group(name="eval")
def eval_group() -> None:
    """Run eval tasks against a model, and read the results."""


@asynccontextmanager
async def serving_client(
    settings: Settings, base_url: str | None, api_key: str | None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a running server (``--base-url``), or of this machine's app started
    in-process (its models load here)."""
    timeout = httpx.Timeout(settings.request_timeout_s, connect=10)
    if base_url is not None:
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient(
            base_url=base_url.rstrip("/").removesuffix("/v1"), headers=headers, timeout=timeout
        ) as client:
            yield client
        return
    from modelyard.app import build_app

    app = build_app(settings)
    async with app.router.lifespan_context(app):
        key = api_key or read_admin_key(settings.home)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://modelyard",
            headers={"authorization": f"Bearer {key}"},
            timeout=timeout,
        ) as client:
            yield client


@eval_group.command("run")
@click.argument("task_file", type=click.Path(path_type=Path))
@click.option("-m", "--model", default="default", show_default=True, help="Public model name.")
@click.option("--limit", type=click.IntRange(1), help="A sample of this many items.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--resume", "resume", type=int, help="Finish an interrupted run.")
@click.option("--base-url", help="A running server (default: start the app in-process).")
@click.option("--api-key", help="Key for --base-url (default: MODELYARD_API_KEY).")
@click.option(
    "--allow-train-overlap",
    is_flag=True,
    help="Grade items a curated dataset's train split holds (refused by default; recorded).",
)
@click.option(
    "--swap",
    "swaps",
    multiple=True,
    type=click.Choice(list(SWAPS)),
    help="Also ask each item's counterfactual twin with these words swapped (as the task's "
    "counterfactual.swaps; repeat for several).",
)
@json_option
def run(
    task_file: Path,
    model: str,
    limit: int | None,
    seed: int,
    concurrency: int,
    resume: int | None,
    base_url: str | None,
    api_key: str | None,
    allow_train_overlap: bool,
    swaps: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run TASK_FILE against MODEL (every item goes through /v1/chat/completions)."""
    settings = Settings()
    with open_home_store() as store:  # fails before any request
        task, items = load_task(task_file, set(METRICS), DatasetService(store).latest_items)
    if swaps:
        fields = task.counterfactual.fields if task.counterfactual else None
        swapping = CounterfactualSpec(swaps=list(swaps), fields=fields)
        task = task.model_copy(update={"counterfactual": swapping})

    async def go(store: Store) -> EvalRunOut:
        runs = EvalRuns(store)
        with Progress(transient=True, disable=as_json) as bar:
            tracked = bar.add_task(f"{task.name} on {model}", total=None)
            async with serving_client(settings, base_url, api_key) as client:
                return await run_task(
                    client,
                    runs,
                    task,
                    items,
                    model,
                    limit=limit,
                    seed=seed,
                    concurrency=concurrency,
                    actor=local_actor(),
                    resume=resume,
                    progress=lambda done, total: bar.update(tracked, completed=done, total=total),
                    allow_train_overlap=allow_train_overlap,
                )

    with open_home_store() as store:
        result = asyncio.run(go(store))
    if as_json:
        print_json(result)
        return
    _show(result)


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _show(run: EvalRunOut) -> None:
    click.echo(
        f"run {run.id}: {run.task} on {run.model} ({', '.join(run.versions) or 'no version'}), "
        f"{run.done}/{run.item_count} items, {run.status}"
    )
    print_table(
        "Metrics",
        ["metric", "value", "higher is better"],
        [[name, _value(m["value"]), m["higher_is_better"]] for name, m in run.metrics.items()],
    )


@eval_group.command("list")
@click.option("--task", help="Only this task.")
@json_option
def list_runs(task: str | None, as_json: bool) -> None:
    """Runs, newest first."""
    with open_home_store() as store:
        runs = EvalRuns(store).list_runs(task)
    if as_json:
        print_json(runs)
        return
    print_table(
        "Eval runs",
        ["id", "when", "task", "model", "versions", "items", "status", "metrics"],
        [
            [
                r.id,
                when(r.created_at),
                r.task,
                r.model,
                " ".join(r.versions),
                f"{r.done}/{r.item_count}",
                r.status,
                " ".join(f"{k}={_value(m['value'])}" for k, m in r.metrics.items()),
            ]
            for r in runs
        ],
    )


@eval_group.command("show")
@click.argument("run_id", type=int)
@json_option
def show(run_id: int, as_json: bool) -> None:
    """One run's metrics."""
    with open_home_store() as store:
        result = EvalRuns(store).get(run_id)
    if as_json:
        print_json(result)
    else:
        _show(result)


@eval_group.command("report")
@click.argument("run_id", type=int)
@click.option("--out", type=click.Path(path_type=Path), help="Write the JSON report here.")
def report_command(run_id: int, out: Path | None) -> None:
    """A run's report as JSON (the console shows it as HTML at /ui/eval/runs/RUN_ID)."""
    with open_home_store() as store:
        runs = EvalRuns(store)
        items = runs.items(run_id)
        costs = request_costs(store, [i.request_id for i in items if i.request_id])
        spec = runs.spec(run_id)
        data = report(
            runs.get(run_id), items, Registry(store), task_of(spec), costs, spec.get("facts")
        )
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


@eval_group.command("slices")
@click.argument("run_id", type=int)
@click.option(
    "--by",
    "by",
    multiple=True,
    help="An attribute to slice by: an item field, language, length, variant (repeat for several).",
)
@click.option("--sensitive", help="Fairness measures over this attribute (classification).")
@click.option("--positive", help="The label taken as the positive outcome (default: each).")
@json_option
def slices_command(
    run_id: int, by: tuple[str, ...], sensitive: str | None, positive: str | None, as_json: bool
) -> None:
    """A run's metrics by slice with intervals, its fairness over a sensitive attribute and
    its counterfactual pairs (the console shows it at /ui/eval/runs/RUN_ID/slices)."""
    with open_home_store() as store:
        result = breakdown(load_breakdown(EvalRuns(store), run_id), list(by), sensitive, positive)
    if as_json:
        print_json(result)
        return
    click.echo(
        f"run {run_id}: {result['task']}, {result['items']} items; attributes: "
        f"{', '.join(result['attributes'])}"
    )
    for table in result["slices"]:
        _show_slices(table)
    if result["fairness"]:
        _show_fairness(result["fairness"])
    if result["counterfactual"]:
        _show_counterfactual(result["counterfactual"])


def _interval(m: dict[str, object]) -> str:
    if m.get("ci_low") is None:
        return str(m.get("note") or "—")
    return f"[{m['ci_low']:.4f}, {m['ci_high']:.4f}]"


def _show_slices(table: dict[str, Any]) -> None:
    print_table(
        f"By {table['attribute']}",
        ["slice", "n", "metric", "value", "95% CI"],
        [
            [s["value"], s["n"], name, _value(m["value"]), _interval(m)]
            for s in table["slices"]
            for name, m in s["metrics"].items()
        ],
    )
    for name, worst in table["worst"].items():
        if worst is not None:
            click.echo(f"worst {name}: {worst['slice']} ({_value(worst['value'])}, n={worst['n']})")


def _show_fairness(fair: dict[str, Any]) -> None:
    print_table(
        f"Fairness over {fair['sensitive']} (groups: "
        + ", ".join(f"{g} n={n}" for g, n in fair["groups"].items())
        + ")",
        ["label", "demographic parity diff.", "disparate impact ratio", "equalised odds diff."],
        [
            [
                label,
                _value(m["demographic_parity_difference"]),
                _value(m["disparate_impact_ratio"]),
                _value(m["equalized_odds_difference"]),
            ]
            for label, m in fair["labels"].items()
        ],
    )
    for name, worst in fair["worst"].items():
        if worst is not None:
            click.echo(f"worst {name}: {_value(worst['value'])} (label {worst['label']})")


def _show_counterfactual(pairs: dict[str, Any]) -> None:
    click.echo(
        f"counterfactual pairs ({', '.join(pairs['swaps'])}): {pairs['pairs']} pairs, "
        f"flip rate {pairs['flip_rate']:.4f}"
    )
    for name, d in pairs["differences"].items():
        click.echo(
            f"  {name}: twin - original = {d['difference']:+.4f}, 95% CI "
            f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
            f"{' (significant)' if d['significant'] else ''}"
        )
    if pairs["mcnemar"]:
        m = pairs["mcnemar"]
        click.echo(f"  McNemar (exact, {m['metric']}): p = {m['p_value']:.4g}")


@eval_group.command("compare")
@click.argument("baseline", type=int)
@click.argument("candidate", type=int)
@json_option
def compare_command(baseline: int, candidate: int, as_json: bool) -> None:
    """Compare two runs of one task on the same items: paired bootstrap 95% CIs per
    metric, and McNemar's exact test on per-item correctness."""
    with open_home_store() as store:
        runs = EvalRuns(store)
        result = compare(
            task_of(runs.spec(candidate)),
            runs.get(baseline),
            runs.items(baseline),
            runs.get(candidate),
            runs.items(candidate),
        )
    if as_json:
        print_json(result)
        return
    print_table(
        f"Run {candidate} against run {baseline} ({result['items']} paired items)",
        ["metric", "baseline", "candidate", "difference", "95% CI", "significant"],
        [
            [
                name,
                f"{d['baseline']:.4f}",
                f"{d['candidate']:.4f}",
                f"{d['difference']:+.4f}",
                f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]",
                "yes" if d["significant"] else "no",
            ]
            for name, d in result["differences"].items()
        ],
    )
    if result["mcnemar"]:
        m = result["mcnemar"]
        click.echo(
            f"McNemar (exact, {m['metric']}): {m['baseline_only']} items only the baseline got "
            f"right, {m['candidate_only']} only the candidate; p = {m['p_value']:.4g}"
        )


@eval_group.command("gate")
@click.argument("run_id", type=int)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="YAML or JSON list of gate rules.",
)
@click.option("--baseline", type=int, help="A baseline run for change thresholds.")
@json_option
def gate_command(run_id: int, rules_file: Path, baseline: int | None, as_json: bool) -> None:
    """Pass or fail RUN_ID against thresholds; exits 1 on failure (for any CI)."""
    raw = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise click.ClickException(f"{rules_file} must hold a list of rules")
    if not raw:
        raise click.ClickException(f"{rules_file} holds no rule")
    raw, robust = split_rules(raw)  # {robustness: ...} entries: perturbed runs against this one
    rules = [GateRule.model_validate(rule) for rule in raw]
    with open_home_store() as store:
        runs = EvalRuns(store)
        sliced = needs_breakdown(rules)
        result = (
            GateResult(passed=True, checks=[])
            if not rules
            else gate(
                rules,
                task_of(runs.spec(run_id)),
                runs.get(run_id),
                runs.items(run_id),
                runs.get(baseline) if baseline is not None else None,
                runs.items(baseline) if baseline is not None else None,
                extra=gate_values(rules, load_breakdown(runs, run_id)) if sliced else None,
                baseline_extra=(
                    gate_values(rules, load_breakdown(runs, baseline))
                    if sliced and baseline is not None
                    else None
                ),
            )
        )
        result = with_robustness(result, robust, runs, run_id)
    if as_json:
        print_json(
            {
                "passed": result.passed,
                "checks": [{"passed": c.passed, "reason": c.reason} for c in result.checks],
            }
        )
    else:
        for check in result.checks:
            click.echo(f"{'PASS' if check.passed else 'FAIL'}  {check.reason}")
        click.echo("gate passed" if result.passed else "gate FAILED")
    if not result.passed:
        raise SystemExit(1)


@eval_group.command("judge-pair")
@click.argument("baseline", type=int)
@click.argument("candidate", type=int)
@click.option("--judge", "judge_model", required=True, help="The judge: a route or version.")
@click.option(
    "--criteria",
    default="Which answer is more correct and helpful?",
    show_default=True,
    help="What the judge weighs.",
)
@click.option("--base-url", help="A running server (default: start the app in-process).")
@click.option("--api-key", help="Key for --base-url.")
@json_option
def judge_pair(
    baseline: int,
    candidate: int,
    judge_model: str,
    criteria: str,
    base_url: str | None,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Let a judge model pick the better answer of two runs item by item, each pair asked
    twice with the positions swapped; stored with the candidate run."""
    settings = Settings()

    async def go(store: Store) -> dict[str, object]:
        runs = EvalRuns(store)
        b_items, c_items = paired(
            task_of(runs.spec(candidate)),
            runs.get(baseline),
            runs.items(baseline),
            runs.get(candidate),
            runs.items(candidate),
        )
        questions = [item.question for item in c_items]
        async with serving_client(settings, base_url, api_key) as client:
            judged = await pairwise(client, judge_model, criteria, questions, b_items, c_items)
        name = f"pairwise-vs-{baseline}"
        Judgements(store).save(candidate, name, "pairwise", judge_model, judged)
        return {"judge": name, "model": judge_model, **summary(judged)}

    with open_home_store() as store:
        result = asyncio.run(go(store))
    if as_json:
        print_json(result)
    else:
        click.echo(
            f"candidate {candidate} against baseline {baseline}, judged by {judge_model}: "
            f"win rate {_value(result['value'])} over {result['scored']} items "  # type: ignore[arg-type]
            f"(ties count 0.5; {result['failed']} not judged)"
        )
