"""``modelyard eval robustness|robustness-report|redteam``: a task's robustness suite (the
clean run and one run per perturbation, compared item by item), and the red-team and
leakage suites' rates per route. Commands of the ``eval`` noun: ``eval_group`` here is
``cli/eval.py``'s group with these added, the one ``modelyard`` registers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress

from modelyard.cli.common import json_option, open_home_store, print_json, print_table
from modelyard.cli.eval import eval_group, serving_client
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.redteam.summary import redteam_summary
from modelyard.evaluate.robustness.apply import fields_to_perturb
from modelyard.evaluate.robustness.report import robustness_report
from modelyard.evaluate.robustness.spec import Perturbation, parse_perturbation
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns, dataset_digest
from modelyard.evaluate.tasks import Item, Task, TaskError, load_task
from modelyard.services import local_actor
from modelyard.store import Store

__all__ = ["eval_group", "redteam", "robustness", "robustness_report_command"]


@eval_group.command("robustness")
@click.argument("task_file", type=click.Path(path_type=Path))
@click.option("-m", "--model", default="default", show_default=True, help="Public model name.")
@click.option(
    "-p",
    "--perturbation",
    "perturbations",
    multiple=True,
    required=True,
    help="typos, casing[:upper|lower|title|random], punctuation[:remove|add], whitespace, "
    "confusables[:homoglyphs|zero_width|full_width], opencc[:s2t|s2tw|s2hk|t2s] or "
    "paraphrase@ROUTE; repeat for several.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.1,
    show_default=True,
    help="Share of characters or gaps a perturbation changes.",
)
@click.option("--perturbation-seed", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--field",
    "fields",
    multiple=True,
    help="An item field to perturb (repeat; default: the template's fields but the target).",
)
@click.option("--clean", "clean_id", type=int, help="A finished clean run to compare with.")
@click.option("--limit", type=click.IntRange(1), help="A sample of this many items.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--base-url", help="A running server (default: start the app in-process).")
@click.option("--api-key", help="Key for --base-url (default: MODELYARD_API_KEY).")
@json_option
def robustness(
    task_file: Path,
    model: str,
    perturbations: tuple[str, ...],
    rate: float,
    perturbation_seed: int,
    fields: tuple[str, ...],
    clean_id: int | None,
    limit: int | None,
    seed: int,
    concurrency: int,
    base_url: str | None,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Run TASK_FILE clean (or take --clean RUN) and once per perturbation of its prompt
    inputs against MODEL, then compare each with the clean run item by item."""
    settings = Settings()
    only = list(fields) or None
    chosen = [parse_perturbation(p, rate, perturbation_seed, only) for p in perturbations]
    with open_home_store() as store:  # fails before any request
        task, items, tasks = _suite(task_file, chosen, store)
        if clean_id is not None:
            limit, seed = _sample_of(EvalRuns(store), clean_id, task, items, model)

    async def go(store: Store) -> int:
        runs = EvalRuns(store)
        with Progress(transient=True, disable=as_json) as bar:
            async with serving_client(settings, base_url, api_key) as client:

                async def one(each: Task) -> int:
                    label = each.perturbation.label if each.perturbation else "clean"
                    tracked = bar.add_task(f"{each.name} {label} on {model}", total=None)
                    run = await run_task(
                        client,
                        runs,
                        each,
                        items,
                        model,
                        limit=limit,
                        seed=seed,
                        concurrency=concurrency,
                        actor=local_actor(),
                        progress=lambda done, total: bar.update(
                            tracked, completed=done, total=total
                        ),
                    )
                    return run.id

                clean = clean_id if clean_id is not None else await one(task)
                for perturbed in tasks:
                    await one(perturbed)
        return clean

    with open_home_store() as store:
        clean = asyncio.run(go(store))
        report = robustness_report(EvalRuns(store), clean)
    _show_robustness(report, as_json)


def _suite(
    task_file: Path, chosen: list[Perturbation], store: Store
) -> tuple[Task, list[Item], list[Task]]:
    """The clean task, its items and one task per perturbation, all checked."""
    task, items = load_task(task_file, set(METRICS), DatasetService(store).latest_items)
    if task.perturbation is not None:
        raise TaskError(f"{task_file} is itself perturbed; give the clean task")
    tasks = [task.model_copy(update={"perturbation": p}) for p in chosen]
    for perturbed in tasks:
        fields_to_perturb(perturbed, items)
    return task, items, tasks


def _sample_of(
    runs: EvalRuns, clean_id: int, task: Task, items: list[Item], model: str
) -> tuple[int | None, int]:
    """The limit and seed that draw the items of the clean run ``clean_id`` (which ran
    ``task`` on these items against ``model``: what its report pairs with)."""
    clean, spec = runs.get(clean_id), runs.spec(clean_id)
    if clean.task != task.name or spec.get("perturbation") is not None:
        raise TaskError(f"run {clean_id} is not a clean run of task {task.name}")
    if clean.model != model or clean.dataset_sha256 != dataset_digest(items):
        raise TaskError(
            f"run {clean_id} ran {clean.model} on other items; give -m {clean.model} and the "
            "same dataset, or leave out --clean"
        )
    return (clean.item_count if clean.item_count < len(items) else None), int(spec["seed"])


@eval_group.command("robustness-report")
@click.argument("run_id", type=int)
@json_option
def robustness_report_command(run_id: int, as_json: bool) -> None:
    """The perturbed runs of the clean run RUN_ID against it (the console shows it at
    /ui/eval/runs/RUN_ID/robustness)."""
    with open_home_store() as store:
        report = robustness_report(EvalRuns(store), run_id)
    _show_robustness(report, as_json)


def _show_robustness(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    clean = report["clean"]
    rows = [
        [
            row["perturbation"],
            row["run"],
            name,
            f"{d['baseline']:.4f}",
            f"{d['candidate']:.4f}",
            f"{d['difference']:+.4f}",
            f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]",
            "yes" if d["significant"] else "no",
        ]
        for row in report["perturbations"]
        for name, d in row["differences"].items()
    ]
    print_table(
        f"Robustness of run {clean['id']} ({clean['task']} on {clean['model']}, "
        f"{clean['item_count']} items): perturbed minus clean, paired bootstrap 95% CI",
        ["perturbation", "run", "metric", "clean", "perturbed", "change", "95% CI", "significant"],
        rows,
    )
    if not rows:
        click.echo("no perturbed run yet: `modelyard eval robustness TASK.yaml -p typos ...`")


@eval_group.command("redteam")
@click.argument("run_ids", type=int, nargs=-1, required=True)
@json_option
def redteam(run_ids: tuple[int, ...], as_json: bool) -> None:
    """Attack-success (or leak) and refusal rates of red-team and leakage runs (one per
    route), and how many of their requests the guard blocked or flagged."""
    with open_home_store() as store:
        summary = redteam_summary(store, list(run_ids))
    if as_json:
        print_json(summary)
        return
    names = sorted({name for row in summary["runs"] for name in row["rates"]})
    print_table(
        "Red team and leakage (rates over every item; a blocked request leaked nothing)",
        ["run", "task", "model", "items", "errors", *names, "guard blocked", "guard flagged"],
        [
            [
                row["run"],
                row["task"],
                row["model"],
                row["items"],
                row["errors"],
                *(_rate(row["rates"].get(name)) for name in names),
                row["guard"]["blocked_injection"] + row["guard"]["blocked_pii"],
                row["guard"]["flagged_injection"],
            ]
            for row in summary["runs"]
        ],
    )


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
