"""``modelyard compress MODEL@N --to Q8_0,Q4_K_M``: quantised variants of a version, each
registered as a version of the same model and measured beside the parent (size, load time,
memory, speed, quality); ``compress list`` and ``compress show ID`` read them back."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import click
import httpx
import yaml

from modelyard.cli.common import json_option, open_home_store, print_json, print_table
from modelyard.cli.eval import serving_client
from modelyard.config import Settings
from modelyard.improve.compress.compression import compress as run_compression
from modelyard.improve.compress.compression import start_compression
from modelyard.improve.compress.protocol import CompressionOut, CompressRequest
from modelyard.improve.compress.records import Compressions
from modelyard.improve.compress.table import display
from modelyard.services import local_actor


class _RunByDefault(click.Group):
    """``compress MODEL@N ...`` is ``compress run MODEL@N ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_RunByDefault)
def compress() -> None:
    """Quantised variants of a version, measured against it (llama.cpp types for a GGUF,
    int8 for an embedding model)."""


@compress.command("run")
@click.argument("version")
@click.option("--to", "to", required=True, help="Types, comma-separated: Q8_0,Q4_K_M or int8.")
@click.option("--texts", "dataset", help="Measure quality on this dataset[@version]'s texts.")
@click.option(
    "--texts-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Or on this file's texts: a text per line, or JSONL with a 'text' field.",
)
@click.option("--text-field", help="The dataset's text field (default: input, text, ...).")
@click.option("--label-field", help="Embedding models: compare classification accuracy too.")
@click.option("--limit", type=click.IntRange(1, 5000), default=200, show_default=True)
@click.option("--streams", default="1,8", show_default=True, help="Streams to time tokens/s at.")
@click.option("--max-tokens", type=click.IntRange(8, 1024), default=64, show_default=True)
@click.option("--threads", type=click.IntRange(0, 256), default=0, help="0: every core.")
@click.option(
    "--gate",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML or JSON: a list of gate rules each variant must meet against the parent.",
)
@click.option(
    "--eval-task",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A task file (dataset: {registered: NAME}) scored on the parent and every variant.",
)
@click.option("--eval-limit", type=click.IntRange(1), help="A sample of the task's items.")
@click.option("--notes", default="", help="Appended to each variant's notes.")
@click.option("--base-url", help="For --eval-task: a running server (default: in-process).")
@click.option("--api-key", help="Key for --base-url (default: MODELYARD_API_KEY).")
@json_option
def run(version: str, **options: Any) -> None:
    """Make VERSION's (MODEL@N) variants, register each as a version and measure them."""
    model, _, number = version.partition("@")
    if not number.isdigit():
        raise click.ClickException(f"'{version}' is not MODEL@N (a version number)")
    texts = _texts(options)
    request = CompressRequest.model_validate(
        {
            "model": model,
            "version": int(number),
            "to": [method.strip() for method in options["to"].split(",") if method.strip()],
            "texts": texts,
            "streams": _streams(options["streams"]),
            "max_tokens": options["max_tokens"],
            "threads": options["threads"],
            "gate": _gate(options["gate"]),
            "eval": _eval(options["eval_task"], options["eval_limit"]),
            "notes": options["notes"],
        }
    )
    settings = Settings()

    def serving() -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return serving_client(settings, options["base_url"], options["api_key"])

    with open_home_store() as store:
        started = start_compression(store, request, local_actor())
        click.echo(f"compression {started.id}: {version} to {', '.join(request.to)}", err=True)
        out = asyncio.run(run_compression(store, settings.home, started.id, serving))
    _show(out, options["as_json"])
    if out.status == "failed":
        raise click.ClickException(out.message or "the compression failed")
    failed = [
        f"@{row.version} {row.method}"
        for row in out.variants
        if row.gate and not row.gate["passed"]
    ]
    if failed:
        raise click.ClickException(
            f"{', '.join(failed)} failed the gate (registered all the same; do not route to them)"
        )


def _texts(options: dict[str, Any]) -> dict[str, Any] | None:
    dataset, path = options["dataset"], options["texts_file"]
    if dataset and path:
        raise click.ClickException("give --texts or --texts-file, not both")
    common = {"limit": options["limit"]}
    if dataset:
        return {
            "dataset": dataset,
            "field": options["text_field"],
            "label_field": options["label_field"],
            **common,
        }
    if path is None:
        return None
    if options["label_field"]:
        raise click.ClickException("--label-field goes with --texts (a dataset)")
    return {"texts": _read_file(path)[: options["limit"]], **common}


def _read_file(path: Path) -> list[str]:
    if not path.is_file():
        raise click.ClickException(f"{path} does not exist")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix != ".jsonl":
        return lines
    texts = []
    for number, line in enumerate(lines, 1):
        try:
            texts.append(str(json.loads(line)["text"]))
        except (ValueError, KeyError, TypeError) as error:
            raise click.ClickException(f"{path}:{number} has no 'text': {error}") from None
    return texts


def _eval(path: Path | None, limit: int | None) -> dict[str, Any] | None:
    if path is None:
        if limit is not None:
            raise click.ClickException("--eval-limit goes with --eval-task")
        return None
    if not path.is_file():
        raise click.ClickException(f"{path} does not exist")
    return {"task_yaml": path.read_text(encoding="utf-8"), "limit": limit}


def _streams(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.ClickException(f"--streams must be numbers like 1,8, not {value!r}") from None


def _gate(path: Path | None) -> list[Any]:
    if path is None:
        return []
    if not path.is_file():
        raise click.ClickException(f"{path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise click.ClickException(f"{path} is not valid YAML: {error}") from None
    rules = raw.get("rules") if isinstance(raw, dict) else raw
    if not isinstance(rules, list):
        raise click.ClickException(f"{path} must hold a list of rules (or rules: [...])")
    return rules


@compress.command("list")
@click.option("-m", "--model", help="Only this model's compressions.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def list_command(model: str | None, limit: int, as_json: bool) -> None:
    """Compressions, newest first."""
    with open_home_store() as store:
        found = Compressions(store).list_compressions(model, limit)
    if as_json:
        print_json(found)
        return
    print_table(
        "Compressions",
        ["id", "parent", "to", "status", "stage", "variants"],
        [
            [
                out.id,
                f"{out.model}@{out.version}",
                ", ".join(out.request.to),
                out.status,
                out.stage,
                ", ".join(f"@{row.version}" for row in out.variants if row.role == "variant"),
            ]
            for out in found
        ],
    )


@compress.command("show")
@click.argument("compression_id", type=click.IntRange(1, 2**31 - 1))
@json_option
def show(compression_id: int, as_json: bool) -> None:
    """One compression's table: the parent and each variant, measured."""
    with open_home_store() as store:
        out = Compressions(store).get(compression_id)
    _show(out, as_json)


def _show(out: CompressionOut, as_json: bool) -> None:
    if as_json:
        print_json(out)
        return
    headers, rows = display(out.engine_kind, out.variants, out.request.streams)
    print_table(
        f"Compression {out.id}: {out.model}@{out.version} ({out.status}, {out.stage})",
        headers,
        rows,
    )
    for row in out.variants:
        for note in row.notes:
            click.echo(f"@{row.version} {row.method}: {note}")
        if row.gate is not None:
            for check in row.gate["checks"]:
                mark = "pass" if check["passed"] else "FAIL"
                click.echo(f"@{row.version} gate {mark}: {check['reason']}")
    if out.message:
        click.echo(out.message)
