"""Wire types of the registry API (``/api/models``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Task = Literal["chat", "completion", "embedding", "classification"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)


def check_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} '{value}' is not valid: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    return value


def version_name(model: str, number: int) -> str:
    """A version's name, ``model@n``: what logs, headers, breakers and metrics key on."""
    return f"{model}@{number}"


class VersionOut(BaseModel):
    model: str
    number: int
    engine_kind: str
    artifact_uri: str
    artifact_sha256: str | None
    parameters: dict[str, Any]
    created_at: datetime
    created_by: str
    notes: str
    aliases: list[str] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return version_name(self.model, self.number)


class AliasOut(BaseModel):
    model: str
    name: str
    version: int
    updated_at: datetime


class AliasMoveOut(BaseModel):
    id: int
    model: str
    alias: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    moved_at: datetime


class ModelOut(BaseModel):
    name: str
    task: Task
    description: str
    created_at: datetime
    aliases: list[AliasOut] = Field(default_factory=list)
    latest_version: int | None = None


class ModelDetail(ModelOut):
    versions: list[VersionOut] = Field(default_factory=list)
    history: list[AliasMoveOut] = Field(default_factory=list)


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(json_schema_extra={"pattern": NAME_PATTERN})
    task: Task = "chat"
    description: str = ""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "model name")


def _installed_kinds(schema: dict[str, Any]) -> None:
    """``engine_kind`` is one of the kinds installed where the document is served; read
    when the schema is built, not at import (the kinds are entry points)."""
    from modelyard.engines.kinds import available_kinds

    schema["enum"] = available_kinds()


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine_kind: str = Field(min_length=1, max_length=64, json_schema_extra=_installed_kinds)
    artifact_uri: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="What the engine kind accepts (its `Parameters`; see docs/engines.md): "
        "an unknown name or a wrong type is refused with 400.",
    )
    notes: str = ""
    created_by: str | None = None
    task: Task = Field(default="chat", description="Task of the model if it is created here.")


class AliasMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = ""
    actor: str | None = None


class AliasRollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    reason: str = "rollback"
    actor: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class AliasHistory(BaseModel):
    object: Literal["list"] = "list"
    data: list[AliasMoveOut]
