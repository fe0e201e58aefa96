"""What the CLI commands share: the registry of this machine's store, and output."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import Store, open_store

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@contextmanager
def open_home_store() -> Iterator[Store]:
    """The store of this machine's settings (``MODELYARD_HOME`` or the database URL)."""
    settings = Settings()
    settings.ensure_home()
    store = open_store(settings.store_url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def open_registry() -> Iterator[Registry]:
    with open_home_store() as store:
        yield Registry(store)


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, dict):
        data = value
    else:
        data = [item.model_dump(mode="json") for item in value]
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("—" if cell is None else str(cell) for cell in row))
    Console().print(table)


def when(value: datetime) -> str:
    """A timestamp as people read it: to the second, in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
