"""``modelyard rollout start|plan|list|status|promote|abort|resume``: gradual releases decided
by canary analysis. The server's release controller advances them; these commands act on the
store, and a running server follows within a tick. ``plan`` says what a rollout's analyses
can detect before it starts."""

from __future__ import annotations

import math
from pathlib import Path

import click
import yaml

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.observe.alerts import AlertService
from modelyard.registry import Registry
from modelyard.release.baselines import plan_from_log
from modelyard.release.planner import duration_text
from modelyard.release.protocol import (
    MeasurementOut,
    PlanQuantity,
    RolloutCreate,
    RolloutOut,
    RolloutPlan,
    RolloutPlanCreate,
    Step,
    StepPlan,
)
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
        fields["steps"] = _steps_of(steps_file)
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


def _steps_of(steps_file: Path) -> list[object]:
    try:
        steps = yaml.safe_load(steps_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise click.ClickException(f"{steps_file} is not valid YAML: {error}") from None
    if not isinstance(steps, list):
        raise click.ClickException(f"{steps_file} must hold a list of steps")
    return steps


@rollout.command("plan")
@click.argument("model")
@click.argument("candidate", type=int)
@click.option(
    "--steps",
    "steps_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML list of steps (default: as `start`).",
)
@click.option(
    "--rps",
    type=float,
    help="Expected requests per second on the route (default: the request log's).",
)
@click.option(
    "--window", type=float, default=24, show_default=True, help="Hours of request log read."
)
@json_option
def plan_command(
    model: str,
    candidate: int,
    steps_file: Path | None,
    rps: float | None,
    window: float,
    as_json: bool,
) -> None:
    """What a rollout's analyses can detect (80 % power) before it starts."""
    fields: dict[str, object] = {
        "model": model,
        "candidate": candidate,
        "requests_per_s": rps,
        "window_h": window,
    }
    if steps_file is not None:
        fields["steps"] = _steps_of(steps_file)
    spec = RolloutPlanCreate.model_validate(fields)
    with open_home_store() as store:
        result = plan_from_log(
            store,
            spec.model,
            spec.steps,
            requests_per_s=spec.requests_per_s,
            window_s=spec.window_h * 3600,
        )
    if as_json:
        print_json(result)
    else:
        _show_plan(result)


def _show_plan(result: RolloutPlan) -> None:
    source = (
        "given"
        if result.traffic_source == "given"
        else f"{result.logged_requests} requests in the last {duration_text(result.window_s or 0)}"
    )
    click.echo(
        f"plan for {result.model}: {result.requests_per_s:.3g} requests/s ({source}); "
        f"the smallest effects found with {result.power:.0%} power"
    )
    for step in result.steps:
        _show_step(step)
    print_table(
        "baseline assumed",
        ["quantity", "value", "per request", "share of requests", "n", "source"],
        [_quantity_row(q) for q in result.quantities],
    )
    if any(m.assumed for step in result.steps for m in step.metrics):
        click.echo("* on a documented default: the request log has too little data")
    for warning in result.warnings:
        click.echo(f"! {warning}")


def _show_step(step: StepPlan) -> None:
    design = f"{step.test}" + (f" ({step.spending})" if step.spending else "")
    timing = f"at most {duration_text(step.duration_s)}"
    if step.expected_duration_s is not None:
        timing += f", about {duration_text(step.expected_duration_s)} for an equal candidate"
    print_table(
        f"step {step.step + 1}: analysis at {step.weight:g}%, {design}, alpha "
        f"{step.alpha:g}; a measurement every {step.interval_s:g} s (at most {step.count}), "
        f"planned {step.planned_samples} requests; {timing}",
        ["metric", "margin", "detectable", "fixed-horizon", "promoted if equal", "looks"],
        [
            (
                _marked(m.name, m.assumed, bool(m.warnings)),
                m.margin_text,
                m.detectable_text,
                m.fixed_horizon_text,
                _chance(m.promote_if_equal),
                len(m.looks),
            )
            for m in step.metrics
        ],
    )
    for m in step.metrics:
        for note in m.notes:
            click.echo(f"  {m.name}: {note}")


def _marked(name: str, assumed: bool, warned: bool) -> str:
    """``*``: on a documented default baseline; ``!``: see the warnings below."""
    return name + ("*" if assumed else "") + (" !" if warned else "")


def _quantity_row(quantity: PlanQuantity) -> tuple[object, ...]:
    if quantity.name in ("latency", "ttft"):
        value = f"{math.exp(quantity.mean):.0f} ms (geometric mean)"
        spread = f"log sd {quantity.sd:.3g}"
        if quantity.variance_reduction:
            spread += f" after CUPED (-{quantity.variance_reduction:.0%} variance)"
    elif quantity.name == "errors":
        value, spread = f"{quantity.mean:.2%}", f"sd {quantity.sd:.3g}"
    else:
        value, spread = f"{quantity.mean:.4g}", f"sd {quantity.sd:.3g}"
    return (
        quantity.name,
        value,
        spread,
        f"{quantity.coverage:.0%}",
        quantity.n,
        quantity.source,
    )


def _chance(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


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
