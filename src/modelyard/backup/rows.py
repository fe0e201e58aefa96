"""The rows of every table as typed JSON lines (gzip): written from one backend, loaded into
either.

Each line is a JSON array of a row's values in the table's column order; the manifest names
each column's type, which says how a value is written: ``bytes`` as base64, ``datetime`` as
ISO 8601 in UTC, ``decimal`` as a string, ``json`` as the column's JSON text (so that SQL
NULL and a JSON ``null`` stay apart), the others as JSON's own types. Tables are read through
reflection, not ``store.tables``: a backup holds the schema it was taken at, whatever this
code's head is."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Time,
    cast,
    func,
    null,
    select,
    text,
)
from sqlalchemy.types import TypeEngine

from modelyard.backup.errors import BackupError, DamagedArchive
from modelyard.backup.protocol import ColumnDump, ColumnType, TableDump
from modelyard.store.migrate import VERSION_TABLE

BATCH_ROWS = 1000
# The first match names a column's type (JSON before String, Float before Numeric).
_TYPES: tuple[tuple[type[TypeEngine[Any]], ColumnType], ...] = (
    (JSON, "json"),
    (LargeBinary, "bytes"),
    (DateTime, "datetime"),
    (Date, "date"),
    (Time, "time"),
    (Boolean, "bool"),
    (Integer, "int"),
    (Float, "float"),
    (Numeric, "decimal"),
    (String, "text"),
)


def reflected(connection: Connection) -> list[Table]:
    """The store's tables in the order their foreign keys need (Alembic's own left out)."""
    metadata = MetaData()
    metadata.reflect(connection)
    return [table for table in metadata.sorted_tables if table.name != VERSION_TABLE]


def column_type(table: Table, name: str) -> ColumnType:
    kind = table.columns[name].type
    for base, tag in _TYPES:
        if isinstance(kind, base):
            return tag
    raise BackupError(f"column {table.name}.{name} has a type a backup cannot hold: {kind}")


def dump_table(connection: Connection, table: Table, path: Path, member: str) -> TableDump:
    """Write ``table``'s rows to ``path``, in primary-key order."""
    columns = [ColumnDump(name=c.name, type=column_type(table, c.name)) for c in table.columns]
    selected = [
        cast(c, Text) if dump.type == "json" else c
        for c, dump in zip(table.columns, columns, strict=True)
    ]
    query = select(*selected).order_by(*table.primary_key.columns)
    encoders = [_ENCODERS[column.type] for column in columns]
    rows = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for row in connection.execute(query.execution_options(yield_per=BATCH_ROWS)):
            values = [
                None if v is None else encode(v) for encode, v in zip(encoders, row, strict=True)
            ]
            out.write(json.dumps(values, ensure_ascii=False) + "\n")
            rows += 1
    return TableDump(name=table.name, rows=rows, columns=columns, member=member)


def load_table(connection: Connection, table: Table, dump: TableDump, path: Path) -> int:
    """Insert the rows of ``path`` into ``table`` (at the schema the backup was taken at)."""
    missing = [c.name for c in dump.columns if c.name not in table.columns]
    if missing:
        raise DamagedArchive(
            f"table {dump.name} of the backup has columns its schema lacks: {missing}"
        )
    names = [c.name for c in dump.columns]
    decoders = [_decoder(table, c) for c in dump.columns]
    loaded = 0
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = (_row(names, decoders, line) for line in lines)
        while batch := list(islice(rows, BATCH_ROWS)):
            connection.execute(table.insert(), batch)
            loaded += len(batch)
    if loaded != dump.rows:
        raise DamagedArchive(f"table {dump.name}: {loaded} rows, the manifest says {dump.rows}")
    return loaded


def count_rows(connection: Connection, tables: Iterable[Table]) -> Iterator[tuple[str, int]]:
    for table in tables:
        yield table.name, int(connection.scalar(select(func.count()).select_from(table)) or 0)


def reset_sequences(connection: Connection, tables: Iterable[Table]) -> None:
    """PostgreSQL: move each integer key's sequence past the rows loaded with their ids
    (SQLite takes the next rowid from the rows themselves)."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            sequence = connection.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {
                    "table": connection.dialect.identifier_preparer.quote(table.name),
                    "column": column.name,
                },
            )
            if sequence is None:
                continue
            highest = connection.scalar(select(func.max(column))) or 0
            connection.execute(
                text("SELECT setval(:sequence, :value, :called)"),
                {"sequence": sequence, "value": max(highest, 1), "called": highest > 0},
            )


def _row(names: list[str], decoders: list[Callable[[Any], Any]], line: str) -> dict[str, Any]:
    try:
        values = json.loads(line)
    except ValueError as error:
        raise DamagedArchive(f"a row of the backup is not JSON: {error}") from error
    if not isinstance(values, list) or len(values) != len(names):
        raise DamagedArchive("a row of the backup does not match its table's columns")
    return {
        name: decode(value) for name, decode, value in zip(names, decoders, values, strict=True)
    }


def _utc(value: datetime) -> str:
    # A naive value is UTC: SQLite keeps no offset, and the store writes only UTC.
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


_ENCODERS: dict[ColumnType, Callable[[Any], Any]] = {
    "json": str,
    "bytes": lambda value: base64.b64encode(bytes(value)).decode("ascii"),
    "datetime": _utc,
    "date": lambda value: value.isoformat(),
    "time": lambda value: value.isoformat(),
    "bool": bool,
    "int": int,
    "float": float,
    "decimal": str,
    "text": str,
}


def _decoder(table: Table, dump: ColumnDump) -> Callable[[Any], Any]:
    """How a value written as ``dump.type`` is given to the target column."""
    if dump.type == "json":
        return lambda value: null() if value is None else json.loads(value)
    if dump.type == "datetime":
        # PostgreSQL's timestamptz takes an aware value; SQLite's DATETIME keeps UTC's wall time.
        return _datetime_decoder(bool(getattr(table.columns[dump.name].type, "timezone", False)))
    decode = _DECODERS[dump.type]
    return lambda value: None if value is None else decode(value)


def _datetime_decoder(aware: bool) -> Callable[[Any], Any]:
    def decode(value: str | None) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value).astimezone(UTC)
        return moment if aware else moment.replace(tzinfo=None)

    return decode


_DECODERS: dict[ColumnType, Callable[[Any], Any]] = {
    "bytes": lambda value: base64.b64decode(value),
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "bool": bool,
    "int": int,
    "float": float,
    "decimal": Decimal,
    "text": str,
}
