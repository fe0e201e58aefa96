"""``modelyard route list|show|set|history|clear``: traffic policies of routes (weights,
sticky users, shadows, fallback chain, breakers). A running server follows a change within
``routing_refresh_s``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.registry import Registry
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.protocol import CachePolicy, LiveJudging, TrafficPolicy
from modelyard.services import local_actor
from modelyard.store import Store


def _policies(store: Store) -> TrafficPolicies:
    return TrafficPolicies(store, Registry(store))


@click.group()
def route() -> None:
    """How a route's traffic is split, mirrored and failed over."""


@route.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """Every route with a traffic policy."""
    with open_home_store() as store:
        policies = _policies(store).list_policies()
    if as_json:
        print_json(policies)
        return
    print_table(
        "traffic policies",
        ["route", "stable", "candidates", "shadows", "fallbacks", "combine", "owner", "updated"],
        [
            (
                p.model,
                f"{p.policy.stable_variant} ({p.policy.stable_alias})",
                ", ".join(f"{c.name}=v{c.version} {c.weight:g}%" for c in p.policy.candidates),
                ", ".join(f"v{s.version} {s.share:g}%" for s in p.policy.shadows),
                " → ".join(f.model for f in p.policy.fallbacks),
                p.policy.combine.summary if p.policy.combine is not None else "",
                p.policy.owner,
                when(p.updated_at),
            )
            for p in policies
        ],
    )


@route.command("show")
@click.argument("model")
@json_option
def show_command(model: str, as_json: bool) -> None:
    """MODEL's traffic policy."""
    with open_home_store() as store:
        out = _policies(store).get(model)
    if out is None:
        raise click.ClickException(
            f"route '{model}' has no traffic policy (all its traffic goes to its production alias)"
        )
    if as_json:
        print_json(out)
        return
    click.echo(yaml.safe_dump(out.policy.model_dump(mode="json"), sort_keys=False).rstrip())
    click.echo(f"# updated {when(out.updated_at)} by {out.updated_by}")


@route.command("set")
@click.argument("model")
@click.option(
    "-f",
    "--file",
    "policy_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON of the policy (see docs/release.md).",
)
@click.option("--reason", default="", help="Why (kept in the history and the audit log).")
@json_option
def set_command(model: str, policy_file: Path, reason: str, as_json: bool) -> None:
    """Set MODEL's traffic policy from a file."""
    text = policy_file.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise click.ClickException(f"{policy_file} is not valid YAML or JSON: {error}") from None
    policy = TrafficPolicy.model_validate(raw or {})
    with open_home_store() as store:
        out = _policies(store).put(model, policy, actor=local_actor(), reason=reason)
    if as_json:
        print_json(out)
    else:
        click.echo(f"route '{model}': policy set")


@route.command("cache")
@click.argument("model")
@click.option("--mode", type=click.Choice(["exact", "semantic"]), help="Default: exact.")
@click.option("--backend", type=click.Choice(["memory", "redis"]), help="Default: memory.")
@click.option("--ttl", "ttl_s", type=float, help="An answer's lifetime, s (3600).")
@click.option("--max-entries", type=int, help="Most answers kept per version (10000).")
@click.option("--threshold", type=float, help="Least similarity of a semantic hit.")
@click.option("--shared/--per-key", default=None, help="Share answers between API keys.")
@click.option(
    "--nondeterministic/--deterministic-only",
    default=None,
    help="Also cache requests sampled without temperature 0 or a seed.",
)
@click.option("--off", is_flag=True, help="Turn the route's cache off.")
@click.option("--reason", default="", help="Why (kept in the history and the audit log).")
@json_option
def cache_command(
    model: str, off: bool, reason: str, as_json: bool, **given: str | float | bool | None
) -> None:
    """Turn MODEL's response cache on, change it, or turn it off (--off); the rest of its
    policy stays (see docs/cache.md)."""
    with open_home_store() as store:
        policies = _policies(store)
        current = policies.get(model)
        policy = current.policy if current is not None else TrafficPolicy()
        cache = None
        if not off:
            kept = policy.cache.model_dump() if policy.cache is not None else {}
            changed = {name: value for name, value in given.items() if value is not None}
            cache = CachePolicy.model_validate({**kept, **changed})
        # a policy a rollout manages is refused (409), as any other change
        updated = policy.model_copy(update={"cache": cache, "owner": None})
        out = policies.put(model, updated, actor=local_actor(), reason=reason)
    if as_json:
        print_json(out)
    elif cache is None:
        click.echo(f"route '{model}': cache off")
    else:
        click.echo(f"route '{model}': {cache.mode} cache in {cache.backend}, ttl {cache.ttl_s:g} s")


@route.command("judge")
@click.argument("model")
@click.option("--judge", "judge", help="The judge: a chat model's public name ('m', 'm@n').")
@click.option("--share", type=float, help="Share of answered requests judged, 0-1.")
@click.option("--rubric", help="The criterion the judge scores by.")
@click.option("--scale", type=(int, int), help="The lowest and highest score (1 5).")
@click.option("--per-minute", "max_per_minute", type=int, help="Most judge calls a minute (60).")
@click.option("--cost-per-day", "max_cost_per_day", type=float, help="Most judge cost a day.")
@click.option("--off", is_flag=True, help="Stop judging the route's answers.")
@click.option("--reason", default="", help="Why (kept in the history and the audit log).")
@json_option
def judge_command(
    model: str, off: bool, reason: str, as_json: bool, **given: str | float | None
) -> None:
    """Judge a share of MODEL's answers in the background (its online quality), change how,
    or stop (--off); the rest of its policy stays (see docs/observe.md#live-quality)."""
    with open_home_store() as store:
        policies = _policies(store)
        current = policies.get(model)
        policy = current.policy if current is not None else TrafficPolicy()
        judging = None
        if not off:
            kept = policy.live_judge.model_dump() if policy.live_judge is not None else {}
            changed = {name: value for name, value in given.items() if value is not None}
            judging = LiveJudging.model_validate({**kept, **changed})
        updated = policy.model_copy(update={"live_judge": judging, "owner": None})
        out = policies.put(model, updated, actor=local_actor(), reason=reason)
    if as_json:
        print_json(out)
    elif judging is None:
        click.echo(f"route '{model}': live judging off")
    else:
        click.echo(
            f"route '{model}': {judging.share:.0%} of answers judged by {judging.judge} "
            f"on {judging.scale[0]}-{judging.scale[1]}"
        )


@route.command("history")
@click.argument("model")
@json_option
def history_command(model: str, as_json: bool) -> None:
    """Changes of MODEL's traffic policy, newest first."""
    with open_home_store() as store:
        changes = _policies(store).history(model)
    if as_json:
        print_json(changes)
        return
    print_table(
        f"{model}: policy history",
        ["id", "at", "actor", "reason", "candidates after"],
        [
            (
                c.id,
                when(c.at),
                c.actor,
                c.reason,
                "(cleared)"
                if c.after is None
                else json.dumps([x.model_dump() for x in c.after.candidates]),
            )
            for c in changes
        ],
    )


@route.command("clear")
@click.argument("model")
@click.option("--reason", default="", help="Why.")
def clear_command(model: str, reason: str) -> None:
    """Remove MODEL's traffic policy: all traffic to its production alias again."""
    with open_home_store() as store:
        _policies(store).delete(model, actor=local_actor(), reason=reason)
    click.echo(f"route '{model}': policy cleared")
