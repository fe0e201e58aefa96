"""``modelyard models list|show|add``."""

from __future__ import annotations

import json
from typing import Any, cast

import click

from modelyard.cli.common import json_option, open_registry, print_json, print_table, when
from modelyard.registry.protocol import Task, VersionCreate
from modelyard.services import local_actor

TASKS = click.Choice(["chat", "completion", "embedding", "classification"])


@click.group()
def models() -> None:
    """Models, their versions and aliases."""


@models.command("list")
@json_option
def list_models(as_json: bool) -> None:
    """List the registered models."""
    with open_registry() as registry:
        found = registry.list_models()
    if as_json:
        print_json(found)
        return
    print_table(
        "Models",
        ["name", "task", "latest", "aliases"],
        [
            (
                m.name,
                m.task,
                m.latest_version,
                ", ".join(f"{a.name}→v{a.version}" for a in m.aliases),
            )
            for m in found
        ],
    )


@models.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show a model: its versions, aliases and alias history."""
    with open_registry() as registry:
        detail = registry.model(name)
    if as_json:
        print_json(detail)
        return
    print_table(
        f"{detail.name} ({detail.task}) versions",
        ["#", "engine", "artifact", "sha256", "aliases", "created", "by", "notes"],
        [
            (
                v.number,
                v.engine_kind,
                v.artifact_uri,
                (v.artifact_sha256 or "")[:12] or None,
                ", ".join(v.aliases),
                when(v.created_at),
                v.created_by,
                v.notes,
            )
            for v in detail.versions
        ],
    )


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@models.command("add")
@click.argument("name")
@click.option("--gguf", type=click.Path(dir_okay=False), help="A GGUF file (llamacpp engine).")
@click.option("--upstream", "upstream_url", help="Base URL of an OpenAI-compatible server.")
@click.option("--upstream-model", help="The upstream's model name (with --upstream).")
@click.option("--api-key-env", help="Environment variable holding the upstream's API key.")
@click.option("--engine", "engine_kind", help="Any installed engine kind (with --artifact).")
@click.option("--artifact", help="Artifact URI for --engine.")
@click.option("--param", "params", multiple=True, help="Engine parameter KEY=VALUE (JSON value).")
@click.option("--task", type=TASKS, default="chat", show_default=True, help="Task of a new model.")
@click.option("--notes", default="", help="Free text kept with the version.")
@click.option("--alias", "alias_name", help="Point this alias at the new version.")
@click.option("--reason", default="", help="Why (recorded with the alias move).")
@json_option
def add(
    name: str,
    gguf: str | None,
    upstream_url: str | None,
    upstream_model: str | None,
    api_key_env: str | None,
    engine_kind: str | None,
    artifact: str | None,
    params: tuple[str, ...],
    task: str,
    notes: str,
    alias_name: str | None,
    reason: str,
    as_json: bool,
) -> None:
    """Register a new version of NAME (the model is created if needed). The engine kind
    checks the parameters: an unknown name or a wrong type is refused."""
    kind, uri = _engine_and_artifact(gguf, upstream_url, engine_kind, artifact)
    parameters = _parse_params(params)
    if kind == "upstream":
        if not upstream_model:
            raise click.UsageError("--upstream needs --upstream-model (the upstream's model name)")
        parameters["model"] = upstream_model
        if api_key_env:
            parameters["api_key_env"] = api_key_env
    spec = VersionCreate(
        engine_kind=kind,
        artifact_uri=uri,
        parameters=parameters,
        notes=notes,
        task=cast(Task, task),
    )
    actor = local_actor()
    with open_registry() as registry:
        version = registry.add_version(name, spec, actor=actor)
        move = None
        if alias_name:
            move = registry.set_alias(name, alias_name, version.number, actor=actor, reason=reason)
    if as_json:
        print_json(
            {
                "version": version.model_dump(mode="json"),
                "alias_move": move.model_dump(mode="json") if move else None,
            }
        )
        return
    click.echo(f"added {name} version {version.number} ({kind}: {version.artifact_uri})")
    if move:
        click.echo(f"{alias_name} → v{move.to_version} (was {_v(move.from_version)})")


def _engine_and_artifact(
    gguf: str | None, upstream_url: str | None, engine_kind: str | None, artifact: str | None
) -> tuple[str, str]:
    """The engine kind and artifact URI that exactly one of --gguf, --upstream, --engine names."""
    chosen = [
        flag
        for flag, value in (
            ("--gguf", gguf),
            ("--upstream", upstream_url),
            ("--engine", engine_kind),
        )
        if value
    ]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --gguf, --upstream or --engine")
    if gguf:
        return "llamacpp", gguf
    if upstream_url:
        return "upstream", upstream_url
    if not artifact:
        raise click.UsageError("--engine needs --artifact")
    return str(engine_kind), artifact


def _v(number: int | None) -> str:
    return "none" if number is None else f"v{number}"
