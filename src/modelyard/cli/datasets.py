"""``modelyard datasets add|from-log|list|show|export``: versioned evaluation datasets."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetOut, DatasetService
from modelyard.evaluate.tasks.spec import DatasetFormat
from modelyard.guard import crypto
from modelyard.services import local_actor


def _name_version(reference: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION``."""
    name, at, number = reference.rpartition("@")
    if not at:
        return reference, None
    if not number.isdigit() or int(number) < 1:
        raise click.BadParameter(f"'{reference}' is not NAME or NAME@VERSION (VERSION: 1, 2, ...)")
    return name, int(number)


@click.group()
def datasets() -> None:
    """Named evaluation datasets; each change of content is a new version (1, 2, ...)."""


@datasets.command("add")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(get_args(DatasetFormat)),
    help="Default: from the extension.",
)
@click.option("--records", help="For JSON: the key holding the list of items.")
@click.option("--columns", help="For CSV/TSV without a header row: comma-separated column names.")
@json_option
def add(
    name: str, file: Path, fmt: str | None, records: str | None, columns: str | None, as_json: bool
) -> None:
    """Register FILE's items as NAME's next version (unless NAME's latest holds the same)."""
    with open_home_store() as store:
        out = DatasetService(store).register_file(
            name,
            file,
            fmt,
            records,
            columns.split(",") if columns else None,
            actor=local_actor(),
        )
    _report([out], as_json)


@datasets.command("from-log")
@click.argument("name")
@click.option("--route", help="Only requests to this route.")
@click.option("--feedback", help="Only requests with feedback of this name (e.g. thumbs).")
@click.option("--negative", is_flag=True, help="Only negative feedback (false, or a score of 0).")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=7.0, show_default=True)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
def from_log(
    name: str,
    route: str | None,
    feedback: str | None,
    negative: bool,
    days: float,
    limit: int,
    as_json: bool,
) -> None:
    """NAME's next version from successful logged requests (content opened with this machine's
    content keys)."""
    settings = Settings()
    cipher = crypto.cipher_for(settings)
    with open_home_store() as store:
        out = DatasetService(store).from_log(
            name,
            route=route,
            feedback=feedback,
            negative_only=negative,
            since=datetime.now(UTC) - timedelta(days=days),
            until=None,
            limit=limit,
            open_content=cipher.open,
            actor=local_actor(),
        )
    _report([out], as_json)


@datasets.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """The latest version of every dataset."""
    with open_home_store() as store:
        found = DatasetService(store).list_datasets()
    _report(found, as_json)


@datasets.command("show")
@click.argument("reference", metavar="NAME[@VERSION]")
@click.option("--items", "count", type=click.IntRange(0, 1000), default=5, show_default=True)
@json_option
def show(reference: str, count: int, as_json: bool) -> None:
    """One version (the latest by default) and its first items."""
    name, version = _name_version(reference)
    with open_home_store() as store:
        service = DatasetService(store)
        out = service.get(name, version)
        items = service.items(name, out.version, 0, count)
    if as_json:
        print_json({**out.model_dump(mode="json"), "items": items})
        return
    _report([out], False)
    print_json({"source": out.source, "items": items})


@datasets.command("export")
@click.argument("reference", metavar="NAME[@VERSION]")
def export(reference: str) -> None:
    """Every item of one version (the latest by default) as JSONL on stdout."""
    name, version = _name_version(reference)
    with open_home_store() as store:
        for line in DatasetService(store).export_jsonl(name, version):
            sys.stdout.write(line)


def _report(found: list[DatasetOut], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    print_table(
        "Datasets",
        ["name", "version", "items", "source", "sha256", "created", "by"],
        [
            [
                d.name,
                d.version,
                d.item_count,
                d.source.get("kind"),
                d.sha256[:12],
                when(d.created_at),
                d.created_by,
            ]
            for d in found
        ],
    )
