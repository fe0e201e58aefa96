"""``modelyard finetune export|register|list``: a dataset version exported for an external
trainer, and what the trainer made registered with its lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.cli.models import _parse_params
from modelyard.improve.export.exports import write_export
from modelyard.improve.export.protocol import (
    ExportFormat,
    ExportOut,
    ExportRequest,
    FineTuneOut,
    FineTuneRequest,
)
from modelyard.improve.export.records import overview
from modelyard.improve.export.register import register_finetune
from modelyard.services import local_actor

FORMATS = click.Choice(get_args(ExportFormat))


@click.group()
def finetune() -> None:
    """Export datasets for an external trainer; register what it made, with its lineage."""


@finetune.command("export")
@click.argument("dataset", metavar="DATASET[@VERSION]")
@click.option("--format", "fmt", type=FORMATS, default="openai", show_default=True)
@click.option("--split", help="Only the items of this split (train, dev, test).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@json_option
def export(dataset: str, fmt: str, split: str | None, output: Path, as_json: bool) -> None:
    """Write DATASET (its latest version by default) as OpenAI chat fine-tuning JSONL
    (openai) or ShareGPT (sharegpt: JSONL, sharegpt-json: one array) to OUTPUT, and record
    the export. Items that cannot be converted are counted and listed, never dropped
    unsaid."""
    request = ExportRequest.model_validate({"dataset": dataset, "format": fmt, "split": split})
    with open_home_store() as store:
        out = write_export(store, request, output, local_actor())
    if as_json:
        print_json(out)
        return
    _show_export(out, output)


def _show_export(out: ExportOut, output: Path) -> None:
    counts = out.counts
    click.echo(
        f"export {out.id}: {out.dataset}{f' split {out.split}' if out.split else ''} as "
        f"{out.format} -> {output}: {counts.written} conversations ({counts.corrected} "
        f"corrected), {out.bytes} bytes, sha256 {out.sha256}"
    )
    if counts.skipped:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in counts.skipped_by.items())
        click.echo(f"skipped {counts.skipped} items that cannot be converted ({reasons})")
        print_table(
            "Skipped (first ones)",
            ["item", "reason", "detail"],
            [(e.item_index, e.reason, e.detail) for e in out.skipped_examples],
        )


@finetune.command("register")
@click.argument("model")
@click.option(
    "--from-export",
    "from_export",
    required=True,
    help="The export trained on: its id, or DATASET@VERSION (its export in --format and "
    "--split, made now if there is none).",
)
@click.option("--format", "fmt", type=FORMATS, help="With DATASET@VERSION (default: openai).")
@click.option("--split", help="With DATASET@VERSION: the split exported.")
@click.option("--gguf", help="The GGUF file the trainer made (llamacpp engine).")
@click.option("--upstream", help="Base URL of the OpenAI-compatible server serving it.")
@click.option("--upstream-model", help="Its model name there (with --upstream).")
@click.option("--api-key-env", help="Environment variable holding the upstream's API key.")
@click.option("--base", help="The model it was fine-tuned from.")
@click.option("--trainer", help="What trained it (axolotl, unsloth, openai, ...).")
@click.option("--trainer-job", help="The trainer's job id.")
@click.option("--param", "params", multiple=True, help="A trainer setting KEY=VALUE (JSON value).")
@click.option("--engine-param", "engine_params", multiple=True, help="Engine parameter KEY=VALUE.")
@click.option("--notes", default="", help="Appended to the version's notes.")
@json_option
def register(model: str, **options: Any) -> None:
    """Register what an external trainer made from an export as the next version of MODEL,
    with its lineage: the export, its dataset version, the base model and the job."""
    request = FineTuneRequest.model_validate(
        {
            "model": model,
            "from_export": options["from_export"],
            "format": options["fmt"],
            "split": options["split"],
            "gguf": options["gguf"],
            "upstream": options["upstream"],
            "upstream_model": options["upstream_model"],
            "api_key_env": options["api_key_env"],
            "base": options["base"],
            "trainer": options["trainer"],
            "trainer_job": options["trainer_job"],
            "hyperparameters": _parse_params(options["params"]),
            "parameters": _parse_params(options["engine_params"]),
            "notes": options["notes"],
        }
    )
    with open_home_store() as store:
        out = register_finetune(store, request, local_actor())
    if options["as_json"]:
        print_json(out)
        return
    click.echo(f"registered {out.model}@{out.version} ({out.engine_kind}: {out.artifact_uri})")
    click.echo(out.notes)


@finetune.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
def list_command(limit: int, as_json: bool) -> None:
    """Exports and registered fine-tunes, newest first."""
    with open_home_store() as store:
        found = overview(store, limit)
    if as_json:
        print_json(found)
        return
    print_table(
        "Exports",
        ["id", "dataset", "split", "format", "conversations", "skipped", "sha256", "created", "by"],
        [
            (
                e.id,
                e.dataset,
                e.split,
                e.format,
                e.counts.written,
                e.counts.skipped,
                e.sha256[:12],
                when(e.created_at),
                e.created_by,
            )
            for e in found.exports
        ],
    )
    _show_finetunes(found.finetunes)


def _show_finetunes(finetunes: list[FineTuneOut]) -> None:
    print_table(
        "Fine-tunes",
        ["version", "engine", "export", "dataset", "base", "job", "created"],
        [
            (
                f"{f.model}@{f.version}",
                f.engine_kind,
                f.lineage["export"]["id"],
                f.lineage["dataset"]["name"],
                f.lineage.get("base"),
                f.lineage["trainer"].get("job"),
                when(f.created_at),
            )
            for f in finetunes
        ],
    )
