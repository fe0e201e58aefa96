"""``modelyard policy set|list|show|delete``: guard policies per route (model name)."""

from __future__ import annotations

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table
from modelyard.guard.policies import ANY_ROUTE, PolicyService
from modelyard.guard.protocol import RoutePolicy, RoutePolicyOut
from modelyard.services import local_actor


@click.group()
def policy() -> None:
    """PII, prompt-injection and rate-limit policy per route (`*` for every other route)."""


@policy.command("set")
@click.argument("route")
@click.option(
    "--pii",
    type=click.Choice(["off", "detect", "redact", "block"]),
    default="detect",
    show_default=True,
)
@click.option(
    "--restore/--no-restore",
    default=True,
    show_default=True,
    help="With --pii redact, put the originals back into responses.",
)
@click.option("--entity", "entities", multiple=True, help="Only these PII types (repeatable).")
@click.option(
    "--injection", type=click.Choice(["off", "flag", "block"]), default="flag", show_default=True
)
@click.option("--rpm", type=int, help="Requests per minute for the whole route.")
@click.option("--tpm", type=int, help="Tokens per minute for the whole route.")
@json_option
def set_policy(
    route: str,
    pii: str,
    restore: bool,
    entities: tuple[str, ...],
    injection: str,
    rpm: int | None,
    tpm: int | None,
    as_json: bool,
) -> None:
    """Set ROUTE's policy (replacing the one it had)."""
    body = RoutePolicy.model_validate(
        {
            "pii": pii,
            "pii_restore": restore,
            "pii_entities": list(entities) or None,
            "injection": injection,
            "requests_per_minute": rpm,
            "tokens_per_minute": tpm,
        }
    )
    with open_home_store() as store:
        out = PolicyService(store).set(route, body, actor=local_actor())
    _report([out], as_json)


@policy.command("list")
@json_option
def list_policies(as_json: bool) -> None:
    """Every route's policy; routes without one use `*`'s, else the settings' defaults."""
    with open_home_store() as store:
        found = PolicyService(store).list_policies()
    _report(found, as_json)


@policy.command("delete")
@click.argument("route")
def delete(route: str) -> None:
    """Remove ROUTE's policy (it falls back to `*`)."""
    with open_home_store() as store:
        PolicyService(store).delete(route, actor=local_actor())
    click.echo(f"policy of {route} removed; it now follows '{ANY_ROUTE}' or the defaults")


def _report(policies: list[RoutePolicyOut], as_json: bool) -> None:
    if as_json:
        print_json(policies)
        return
    print_table(
        "Route policies",
        ["route", "pii", "restore", "entities", "injection", "rpm", "tpm", "by"],
        [
            [
                p.route,
                p.pii,
                p.pii_restore,
                " ".join(p.pii_entities or []) or "all",
                p.injection,
                p.requests_per_minute,
                p.tokens_per_minute,
                p.updated_by,
            ]
            for p in policies
        ],
    )
