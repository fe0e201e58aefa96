"""``modelyard alias set|show|history|rollback``: aliases of a model (``-m MODEL``)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from modelyard.cli.common import json_option, open_registry, print_json, print_table, when
from modelyard.registry.protocol import AliasMoveOut
from modelyard.services import local_actor

model_option = click.option(
    "-m", "--model", default="default", show_default=True, help="The model the alias belongs to."
)


@click.group()
def alias() -> None:
    """Move aliases (production, staging, …), see their history, roll back."""


def _report(move: AliasMoveOut, as_json: bool) -> None:
    if as_json:
        print_json(move)
        return
    was = "none" if move.from_version is None else f"v{move.from_version}"
    click.echo(f"{move.model}:{move.alias} → v{move.to_version} (was {was})")


@alias.command("set")
@click.argument("name")
@click.argument("version", type=int)
@model_option
@click.option("--reason", default="", help="Why (kept in the history).")
@json_option
def set_alias(name: str, version: int, model: str, reason: str, as_json: bool) -> None:
    """Point alias NAME at VERSION."""
    with open_registry() as registry:
        move = registry.set_alias(model, name, version, actor=local_actor(), reason=reason)
    _report(move, as_json)


@alias.command("rollback")
@click.argument("name", default="production")
@model_option
@click.option("--to", "to_version", type=int, help="Roll back to this version instead.")
@click.option("--reason", default="rollback", show_default=True, help="Why.")
@json_option
def rollback(name: str, model: str, to_version: int | None, reason: str, as_json: bool) -> None:
    """Move alias NAME back to the version it pointed to before its last move."""
    with open_registry() as registry:
        move = registry.rollback(
            model, name, actor=local_actor(), reason=reason, to_version=to_version
        )
    _report(move, as_json)


@alias.command("history")
@click.argument("name", required=False)
@model_option
@json_option
def history(name: str | None, model: str, as_json: bool) -> None:
    """Every move of alias NAME (or of all the model's aliases): when, who, why."""
    with open_registry() as registry:
        moves = registry.history(model, name)
    if as_json:
        print_json(moves)
        return
    print_table(
        f"{model} alias history",
        ["when", "alias", "from", "to", "actor", "reason"],
        [
            (
                when(m.moved_at),
                m.alias,
                None if m.from_version is None else f"v{m.from_version}",
                f"v{m.to_version}",
                m.actor,
                m.reason,
            )
            for m in moves
        ],
    )


@alias.command("show")
@click.argument("name", default="production")
@model_option
@click.option("--at", "at", type=click.DateTime(), help="A past time, in UTC.")
@json_option
def show(name: str, model: str, at: datetime | None, as_json: bool) -> None:
    """Which version alias NAME points to now, or pointed to at a past time."""
    # click.DateTime parses naive times; modelyard stores and shows UTC.
    moment = at.replace(tzinfo=UTC) if at else datetime.now(UTC)
    with open_registry() as registry:
        version = registry.alias_at(model, name, moment)
    if as_json:
        print_json({"model": model, "alias": name, "at": moment.isoformat(), "version": version})
        return
    if version is None:
        click.echo(f"{model}:{name} did not exist then")
    else:
        click.echo(f"{model}:{name} → v{version}")
