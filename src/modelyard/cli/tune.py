"""``modelyard tune run|resume|list|show``: Optuna studies over an eval task's prompt and
sampling settings, each trial an eval run through the serving path, the best trial
confirmed on held-out items against production."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
import yaml

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.cli.eval import serving_client
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.improve.tune.create import create_study, items_of
from modelyard.improve.tune.errors import StudyBusy
from modelyard.improve.tune.measure import version_parameters
from modelyard.improve.tune.protocol import StudyOut, StudyRequest, TrialOut
from modelyard.improve.tune.runner import StudyRunner
from modelyard.improve.tune.students import builtin_trainers
from modelyard.improve.tune.studies import Studies
from modelyard.registry import Registry
from modelyard.services import local_actor
from modelyard.store import Store

base_url_option = click.option("--base-url", help="A running server (default: in-process).")
api_key_option = click.option("--api-key", help="Key for --base-url (default: MODELYARD_API_KEY).")


@click.group()
def tune() -> None:
    """Search an eval task's prompt and sampling settings for a better score (Optuna TPE)."""


def read_study(path: Path) -> tuple[StudyRequest, Path]:
    """The study a YAML file describes, and the directory its task's dataset path is
    relative to (``task`` may be inline or a task file's path, relative to the study)."""
    raw = _yaml(path)
    base = path.parent
    if isinstance(raw.get("task"), str):
        task_path = (base / raw["task"]).expanduser()
        raw = {**raw, "task": _yaml(task_path)}
        base = task_path.parent
    return StudyRequest.model_validate(raw), base


def _yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise click.ClickException(f"{path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise click.ClickException(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise click.ClickException(f"{path} must hold a mapping")
    return raw


@tune.command("run")
@click.argument("study_file", type=click.Path(path_type=Path))
@base_url_option
@api_key_option
@json_option
def run(study_file: Path, base_url: str | None, api_key: str | None, as_json: bool) -> None:
    """Run the study STUDY_FILE describes (YAML: task, model, space, constraints, trials,
    ...; docs/improve.md): every trial an eval run, the best one confirmed on held-out
    items against the route's production alias. Ctrl-C keeps the trials: resume it."""
    request, base = read_study(study_file)
    with open_home_store() as store:  # every check before any request
        items = items_of(request.task, base, DatasetService(store).latest_items)
        trainers = builtin_trainers(store, Settings().home)
        study_id = create_study(store, request, items, set(trainers), local_actor())
    if not as_json:
        click.echo(f"study {study_id}: {request.trials} trials of {request.task.name}")
    _finish(_run_study(study_id, base_url, api_key, as_json), as_json)


@tune.command("resume")
@click.argument("study_id", type=int)
@base_url_option
@api_key_option
@json_option
def resume(study_id: int, base_url: str | None, api_key: str | None, as_json: bool) -> None:
    """Run an interrupted or failed study on from where it stopped."""
    with open_home_store() as store:
        if Studies(store).status(study_id) == "done":
            raise StudyBusy(f"study {study_id} is done")
    _finish(_run_study(study_id, base_url, api_key, as_json), as_json)


def _run_study(study_id: int, base_url: str | None, api_key: str | None, as_json: bool) -> StudyOut:
    settings = Settings()

    async def go(store: Store) -> StudyOut:
        async with serving_client(settings, base_url, api_key) as client:
            runner = StudyRunner(
                client,
                Studies(store),
                local_actor(),
                version_parameters(Registry(store)),
                builtin_trainers(store, settings.home),
                progress=None if as_json else _trial_line,
            )
            return await runner.run(study_id)

    with open_home_store() as store:
        return asyncio.run(go(store))


def _trial_line(trial: TrialOut) -> None:
    value = "—" if trial.value is None else f"{trial.value:.4f}"
    state = trial.state if trial.feasible is not False else "infeasible"
    click.echo(f"  trial {trial.number}: {value} ({state}) {_params(trial)}")


def _params(trial: TrialOut) -> str:
    return " ".join(f"{name}={_short(value)}" for name, value in trial.params.items())


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _finish(study: StudyOut, as_json: bool) -> None:
    if as_json:
        print_json(study)
    else:
        _show(study)
    if study.status != "done":
        raise SystemExit(1)


@tune.command("list")
@json_option
def list_studies(as_json: bool) -> None:
    """Studies, newest first."""
    with open_home_store() as store:
        studies = Studies(store).list_studies()
    if as_json:
        print_json(studies)
        return
    print_table(
        "Studies",
        ["id", "when", "task", "model", "status", "trials", "best", "confirmed better"],
        [
            [
                s.id,
                when(s.created_at),
                s.task,
                s.model,
                s.status,
                f"{s.trials_done}/{s.trials_planned}",
                None if s.best_value is None else f"#{s.best_trial}: {s.best_value:.4f}",
                s.confirmed,
            ]
            for s in studies
        ],
    )


@tune.command("show")
@click.argument("study_id", type=int)
@json_option
def show(study_id: int, as_json: bool) -> None:
    """One study: its trials, best trial and confirmation."""
    with open_home_store() as store:
        study = Studies(store).get(study_id)
    if as_json:
        print_json(study)
    else:
        _show(study)


def _show(study: StudyOut) -> None:
    click.echo(
        f"study {study.id}: {study.task} on {study.model}, {study.status}"
        f"{f' ({study.message})' if study.message else ''}; {study.direction} {study.objective} "
        f"on {study.partition.search_items} items ({study.partition.search})"
    )
    print_table(
        "Trials",
        ["#", "state", "value", "latency ms", "cost", "feasible", "run", "params"],
        [
            [
                t.number,
                t.state,
                t.value,
                None if t.latency_ms is None else f"{t.latency_ms:.0f}",
                t.cost,
                t.feasible,
                t.run_id,
                _params(t),
            ]
            for t in study.trials
        ],
    )
    if study.best_trial is not None:
        click.echo(f"best: trial {study.best_trial}, {study.objective} = {study.best_value:.4f}")
    found = study.confirmation
    if found is not None and found.difference is not None:
        d = found.difference
        click.echo(
            f"confirmed on {found.holdout_items} held-out items against {found.baseline_model}: "
            f"{d['candidate']:.4f} vs {d['baseline']:.4f}, difference {d['difference']:+.4f} "
            f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] "
            f"({'better' if found.better else 'not shown better'})"
        )
    elif found is not None:
        click.echo(f"confirmation {found.status}: {found.reason or ''}")
