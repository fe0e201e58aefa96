"""Wire types of backup and restore: the archive's manifest and the API's bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from modelyard.wire import IsoDateTime

ColumnType = Literal[
    "json", "bytes", "datetime", "date", "time", "bool", "int", "float", "decimal", "text"
]
Backend = Literal["sqlite", "postgresql"]


class ColumnDump(BaseModel):
    name: str
    type: ColumnType


class TableDump(BaseModel):
    """One table in the archive: its rows as JSON lines in ``member``."""

    name: str
    rows: int = Field(ge=0)
    columns: list[ColumnDump]
    member: str


class Manifest(BaseModel):
    """``manifest.json``, the archive's first member: what it holds and each member's
    SHA-256."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    modelyard_version: str
    created_at: IsoDateTime
    backend: Backend
    schema_revision: str = Field(description="The Alembic revision the rows were taken at.")
    tables: list[TableDump] = Field(description="In the order their foreign keys need.")
    home_files: list[str] = Field(description="Secret files of the home, under `home/`.")
    content_keys: list[str] = Field(description="Ids of the content keys (never the keys).")
    members: dict[str, str] = Field(description="SHA-256 of every other member, by name.")


class TableCount(BaseModel):
    name: str
    rows: int


class BackupCreate(BaseModel):
    """What seals a backup taken over the API: a passphrase (the archive key is derived from
    it with scrypt). Key files are the CLI's."""

    model_config = ConfigDict(extra="forbid")

    passphrase: SecretStr = Field(
        min_length=8, max_length=1024, description="8 to 1024 characters."
    )


class BackupStatus(BaseModel):
    """What a backup of this server would hold, and how to take one."""

    backend: Backend
    schema_revision: str | None
    tables: list[TableCount]
    home_files: list[str]
    content_keys: Literal["file", "environment"]
    commands: list[str] = Field(description="CLI commands that back up and restore.")


class RestoreReport(BaseModel):
    """What a restore wrote."""

    backup_created_at: IsoDateTime
    backup_modelyard_version: str
    backend: Backend = Field(description="The backend restored into.")
    schema_from: str = Field(description="The revision the backup was taken at.")
    schema_to: str = Field(description="The revision the store is at now (head).")
    tables: list[TableCount]
    home_files: list[str]
