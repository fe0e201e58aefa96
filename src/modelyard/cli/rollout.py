"""``modelyard rollout start|list|status|promote|abort|resume``: gradual releases decided by
canary analysis. The server's release controller advances them; these commands act on the
store, and a running server follows within a tick."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.observe.alerts import AlertService
from modelyard.registry import Registry
from modelyard.release.protocol import MeasurementOut, RolloutCreate, RolloutOut, Step
from modelyard.release.rollouts import Rollouts
from modelyard.routing.policies import TrafficPolicies
from modelyard.services import local_actor
from modelyard.store import Store


def rollouts_of(store: Store) -> Rollouts:
    registry = Registry(store)
    return Rollouts(store, registry, TrafficPolicies(store, registry), AlertService(store))


@click.group()
def rollout() -> None:
    """Release a version gradually: weights, pauses, analyses and eval gates."""


@rollout.command("start")
@click.argument("model")
@click.argument("candidate", type=int)
@click.option("--alias", default="production", show_default=True, help="The alias to move.")
@click.option(
    "--steps",
    "steps_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML list of steps (default: 10%, analysis, 50%, analysis, promote).",
)
@click.option("--notify", multiple=True, help="Webhook URL of the alert raised on abort.")
@click.option("--reason", default="", help="Why (kept in the events).")
@json_option
def start_command(
    model: str,
    candidate: int,
    alias: str,
    steps_file: Path | None,
    notify: tuple[str, ...],
    reason: str,
    as_json: bool,
) -> None:
    """Roll out version CANDIDATE of MODEL against what ALIAS points to."""
    fields: dict[str, object] = {
        "model": model,
        "candidate": candidate,
        "alias": alias,
        "notify": list(notify),
        "reason": reason,
    }
    if steps_file is not None:
        try:
            steps = yaml.safe_load(steps_file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise click.ClickException(f"{steps_file} is not valid YAML: {error}") from None
        if not isinstance(steps, list):
            raise click.ClickException(f"{steps_file} must hold a list of steps")
        fields["steps"] = steps
    spec = RolloutCreate.model_validate(fields)
    with open_home_store() as store:
        out = rollouts_of(store).start(spec, local_actor())
    if as_json:
        print_json(out)
    else:
        click.echo(
            f"rollout {out.id}: {model}@{candidate} against {model}@{out.baseline} started; "
            f"`modelyard rollout status {out.id}` follows it"
        )


@rollout.command("list")
@click.option("--model", help="Only this model's rollouts.")
@json_option
def list_command(model: str | None, as_json: bool) -> None:
    """Rollouts, newest first."""
    with open_home_store() as store:
        found = rollouts_of(store).list_rollouts(model)
    if as_json:
        print_json(found)
        return
    print_table(
        "rollouts",
        ["id", "model", "baseline → candidate", "status", "step", "weight", "message", "started"],
        [
            (
                r.id,
                r.model,
                f"{r.baseline} → {r.candidate}",
                r.status,
                f"{min(r.step + 1, len(r.steps))}/{len(r.steps)}",
                f"{r.weight:g}%",
                r.message,
                when(r.started_at),
            )
            for r in found
        ],
    )


@rollout.command("status")
@click.argument("rollout_id", type=int)
@json_option
def status_command(rollout_id: int, as_json: bool) -> None:
    """A rollout's state, steps and latest analysis."""
    with open_home_store() as store:
        service = rollouts_of(store)
        out = service.get(rollout_id)
        measurements = service.measurements(rollout_id)
    if as_json:
        print_json(
            {
                "rollout": out.model_dump(mode="json"),
                "measurements": [m.model_dump(mode="json") for m in measurements],
            }
        )
        return
    _describe(out)
    if measurements:
        _latest(measurements[-1])


def _describe(out: RolloutOut) -> None:
    click.echo(
        f"rollout {out.id}: {out.model}@{out.candidate} against {out.model}@{out.baseline} "
        f"({out.alias}) — {out.status}, weight {out.weight:g}%"
    )
    click.echo(f"  {out.message}")
    for index, step in enumerate(out.steps):
        marker = "→" if index == out.step and out.status in ("running", "paused") else " "
        click.echo(f"  {marker} {index}. {_step(step)}")


def _step(step: Step) -> str:
    if step.set_weight is not None:
        return f"set weight {step.set_weight:g}%"
    if step.pause is not None:
        return "pause" + (
            f" {step.pause.duration_s:g} s" if step.pause.duration_s else " (until resumed)"
        )
    if step.gate is not None:
        return f"eval gate '{step.gate.task}' ({len(step.gate.rules)} rules)"
    assert step.analysis is not None
    names = ", ".join(m.name for m in step.analysis.metrics)
    return f"analysis every {step.analysis.interval_s:g} s: {names}"


def _latest(measurement: MeasurementOut) -> None:
    srm = measurement.data.get("srm", {})
    print_table(
        f"measurement {measurement.seq} of step {measurement.step} ({when(measurement.at)}): "
        f"{measurement.outcome}; SRM p = {srm.get('p_value', float('nan')):.3g} on "
        f"{srm.get('counts')} {srm.get('unit', '')}",
        ["metric", "baseline", "candidate", "n", "difference [interval]", "outcome", "reason"],
        [
            (
                m["name"],
                _number(m["baseline"]),
                _number(m["candidate"]),
                f"{m['baseline_n']}/{m['candidate_n']}",
                f"{_number(m['estimate'])} [{_number(m['low'])}, {_number(m['high'])}]",
                m["outcome"],
                m["reason"],
            )
            for m in measurement.data.get("metrics", [])
        ],
    )


def _number(value: object) -> str:
    return "∞" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _action(name: str, rollout_id: int, reason: str) -> None:
    with open_home_store() as store:
        out: RolloutOut = getattr(rollouts_of(store), name)(rollout_id, local_actor(), reason)
    click.echo(f"rollout {out.id}: {out.status} — {out.message}")


@rollout.command("promote")
@click.argument("rollout_id", type=int)
@click.option("--reason", default="", help="Why.")
def promote_command(rollout_id: int, reason: str) -> None:
    """Promote now (the alias moves to the candidate); refused while an eval gate fails."""
    _action("promote", rollout_id, reason)


@rollout.command("abort")
@click.argument("rollout_id", type=int)
@click.option("--reason", default="", help="Why.")
def abort_command(rollout_id: int, reason: str) -> None:
    """Abort: the candidate's weight goes to 0 and the route's policy is restored."""
    _action("abort", rollout_id, reason)


@rollout.command("resume")
@click.argument("rollout_id", type=int)
@click.option("--reason", default="", help="Why.")
def resume_command(rollout_id: int, reason: str) -> None:
    """Continue a paused rollout (an inconclusive analysis starts over)."""
    _action("resume", rollout_id, reason)
