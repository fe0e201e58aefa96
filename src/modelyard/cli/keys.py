"""``modelyard keys create|update|list|show|revoke|rotate``: API keys, straight on the store.

A revoked or rotated key stops (or starts) working on running servers within their
refresh interval (``routing_refresh_s``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.guard.keys import KeyService
from modelyard.guard.protocol import KeyCreate, KeyCreated, KeyLimits, KeyOut, KeyUpdate
from modelyard.guard.roles import Role
from modelyard.services import local_actor

LIMIT_OPTIONS = (
    click.option("--rpm", type=int, help="Requests per minute."),
    click.option("--tpm", type=int, help="Tokens per minute."),
    click.option("--daily-tokens", type=int, help="Token budget per UTC day."),
    click.option("--monthly-tokens", type=int, help="Token budget per UTC month."),
    click.option("--daily-cost", type=float, help="Cost budget per UTC day."),
    click.option("--monthly-cost", type=float, help="Cost budget per UTC month."),
)
OPTION_FIELDS = MappingProxyType({"rpm": "requests_per_minute", "tpm": "tokens_per_minute"})


F = TypeVar("F", bound=Callable[..., Any])


def limit_options(command: F) -> F:
    for option in reversed(LIMIT_OPTIONS):
        command = option(command)
    return command


def given_limits(options: dict[str, float | None]) -> dict[str, float]:
    """The limits given on the command line, named as KeyLimits names them."""
    return {OPTION_FIELDS.get(k, k): v for k, v in options.items() if v is not None}


@click.group()
def keys() -> None:
    """Create, update, list, revoke and rotate API keys."""


def _limits_text(limits: KeyLimits) -> str:
    return ", ".join(f"{k}={v}" for k, v in limits.model_dump(exclude_none=True).items()) or "—"


def _show_secret(created: KeyCreated, as_json: bool) -> None:
    if as_json:
        print_json(created)
        return
    click.echo(f"{created.name} ({created.role}) id {created.id}")
    click.echo("The key (shown once, store it now):")
    click.echo(created.secret)


@keys.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.developer.value,
    show_default=True,
)
@click.option("--route", "routes", multiple=True, help="Route pattern it may call (repeatable).")
@click.option("--expires-in-days", type=float, help="Expire this many days from now.")
@limit_options
@json_option
def create(
    name: str,
    role: str,
    routes: tuple[str, ...],
    expires_in_days: float | None,
    as_json: bool,
    **limits: float | None,
) -> None:
    """Create a key named NAME and print it (once)."""
    expires = None
    if expires_in_days is not None:
        expires = datetime.now(UTC) + timedelta(days=expires_in_days)
    spec = KeyCreate(
        name=name,
        role=Role(role),
        allowed_routes=list(routes) or ["*"],
        expires_at=expires,
        limits=KeyLimits.model_validate(given_limits(limits)),
    )
    with open_home_store() as store:
        created = KeyService(store).create(spec, actor=local_actor())
    _show_secret(created, as_json)


@keys.command("update")
@click.argument("key_id")
@click.option("--name", help="New name.")
@click.option("--route", "routes", multiple=True, help="Replace the allowed routes (repeatable).")
@click.option("--expires-in-days", type=float, help="Expire this many days from now.")
@limit_options
@json_option
def update(
    key_id: str,
    name: str | None,
    routes: tuple[str, ...],
    expires_in_days: float | None,
    as_json: bool,
    **limits: float | None,
) -> None:
    """Change KEY_ID's name, routes, expiry or limits (limits not given stay as they are)."""
    given = given_limits(limits)
    with open_home_store() as store:
        service = KeyService(store)
        current = service.get(key_id)
        change: dict[str, object] = {}
        if name is not None:
            change["name"] = name
        if routes:
            change["allowed_routes"] = list(routes)
        if expires_in_days is not None:
            change["expires_at"] = datetime.now(UTC) + timedelta(days=expires_in_days)
        if given:
            change["limits"] = {**current.limits.model_dump(exclude_none=True), **given}
        key = service.update(key_id, KeyUpdate.model_validate(change), actor=local_actor())
    _report(key, as_json)


@keys.command("list")
@click.option("--active", is_flag=True, help="Hide revoked keys.")
@json_option
def list_keys(active: bool, as_json: bool) -> None:
    """Every key: id, name, role, routes, limits, status (never the secret)."""
    with open_home_store() as store:
        found = KeyService(store).list_keys(include_revoked=not active)
    if as_json:
        print_json(found)
        return
    print_table(
        "API keys",
        ["id", "name", "role", "routes", "limits", "status", "created", "expires"],
        [
            [
                k.id,
                k.name,
                k.role.value,
                " ".join(k.allowed_routes),
                _limits_text(k.limits),
                k.status,
                when(k.created_at),
                when(k.expires_at) if k.expires_at else None,
            ]
            for k in found
        ],
    )


@keys.command("show")
@click.argument("key_id")
@json_option
def show(key_id: str, as_json: bool) -> None:
    """One key's details."""
    with open_home_store() as store:
        key = KeyService(store).get(key_id)
    _report(key, as_json)


@keys.command("revoke")
@click.argument("key_id")
@json_option
def revoke(key_id: str, as_json: bool) -> None:
    """Revoke KEY_ID: it stops working at once here, within seconds on running servers."""
    with open_home_store() as store:
        key = KeyService(store).revoke(key_id, actor=local_actor())
    _report(key, as_json)


@keys.command("rotate")
@click.argument("key_id")
@click.option(
    "--grace",
    "grace_seconds",
    type=click.IntRange(0, 30 * 86400),
    default=3600,
    show_default=True,
    help="Seconds the old secret keeps working.",
)
@json_option
def rotate(key_id: str, grace_seconds: int, as_json: bool) -> None:
    """Give KEY_ID a new secret; the old one works for --grace seconds more."""
    with open_home_store() as store:
        created = KeyService(store).rotate(key_id, grace_seconds, actor=local_actor())
    _show_secret(created, as_json)


def _report(key: KeyOut, as_json: bool) -> None:
    if as_json:
        print_json(key)
        return
    click.echo(
        f"{key.id} {key.name} ({key.role.value}) {key.status}; routes "
        f"{' '.join(key.allowed_routes)}; limits {_limits_text(key.limits)}"
    )
