"""``modelyard experiment start|list|status|stop``: A/B experiments with a fixed split."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.registry import Registry
from modelyard.release.experiments import Experiments
from modelyard.release.protocol import ExperimentCreate
from modelyard.routing.policies import TrafficPolicies
from modelyard.services import local_actor
from modelyard.store import Store


def experiments_of(store: Store) -> Experiments:
    registry = Registry(store)
    return Experiments(store, registry, TrafficPolicies(store, registry))


@click.group()
def experiment() -> None:
    """Compare versions on live traffic with a fixed split and sequential statistics."""


@experiment.command("start")
@click.option(
    "-f",
    "--file",
    "spec_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML of the experiment (name, model, variants, primary, guardrails, stop, test).",
)
@json_option
def start_command(spec_file: Path, as_json: bool) -> None:
    """Start the experiment a file describes."""
    try:
        raw = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise click.ClickException(f"{spec_file} is not valid YAML: {error}") from None
    spec = ExperimentCreate.model_validate(raw)
    with open_home_store() as store:
        out = experiments_of(store).start(spec, local_actor())
    if as_json:
        print_json(out)
    else:
        click.echo(f"experiment '{out.name}' started on '{out.model}'")


@experiment.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """Experiments, newest first."""
    with open_home_store() as store:
        found = experiments_of(store).list_experiments()
    if as_json:
        print_json(found)
        return
    print_table(
        "experiments",
        ["name", "model", "variants", "primary", "status", "message", "started"],
        [
            (
                e.name,
                e.model,
                ", ".join(f"{v.name}=v{v.version} {v.weight:g}%" for v in e.spec.variants),
                e.spec.primary.name,
                e.status,
                e.message,
                when(e.started_at),
            )
            for e in found
        ],
    )


@experiment.command("status")
@click.argument("name")
@json_option
def status_command(name: str, as_json: bool) -> None:
    """The latest result: per treatment, the primary metric's difference and lift with
    their intervals (group-sequential or always-valid), guardrails and the sample-ratio
    check."""
    with open_home_store() as store:
        out = experiments_of(store).get(name)
    if as_json:
        print_json(out)
        return
    click.echo(f"experiment '{out.name}' on '{out.model}': {out.status} — {out.message}")
    result = out.result
    if not result:
        click.echo("  no analysis yet")
        return
    srm = result["srm"]
    click.echo(f"  samples {result['samples']}; SRM p = {srm['p_value']:.3g}")
    rows = []
    for comparison in result["comparisons"]:
        p = comparison["primary"]
        rows.append(
            (
                comparison["variant"],
                p["name"],
                _n(p["baseline"]),
                _n(p["candidate"]),
                f"{_n(p['estimate'])} [{_n(p['low'])}, {_n(p['high'])}]",
                f"{_n(p['lift'])} [{_n(p['lift_low'])}, {_n(p['lift_high'])}]",
                comparison["verdict"],
            )
        )
    print_table(
        "primary metric against the control",
        [
            "variant",
            "metric",
            "control",
            "variant value",
            "difference [CI]",
            "lift [CI]",
            "verdict",
        ],
        rows,
    )


def _n(value: object) -> str:
    return "∞" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


@experiment.command("stop")
@click.argument("name")
@click.option("--reason", default="", help="Why.")
def stop_command(name: str, reason: str) -> None:
    """Stop NAME: its split ends and the route's policy is restored."""
    with open_home_store() as store:
        out = experiments_of(store).stop(name, local_actor(), reason)
    click.echo(f"experiment '{out.name}': stopped — {out.message}")
