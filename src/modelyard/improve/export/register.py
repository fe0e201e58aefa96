"""Registering what an external trainer made from an export: a GGUF file (``llamacpp``) or
a model on an OpenAI-compatible server (``upstream``), as the next version of a model, with
a lineage naming the export, its dataset version, the base model and the trainer's job.
Everything is checked before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.engines.base import EngineError
from modelyard.engines.kinds import check_parameters
from modelyard.engines.llamacpp.artifact import NotGguf, gguf_header
from modelyard.improve.export.errors import InvalidFineTune
from modelyard.improve.export.exports import dataset_of, manifest, measure
from modelyard.improve.export.protocol import ExportOut, FineTuneOut, FineTuneRequest
from modelyard.improve.export.records import (
    get_export,
    latest_export,
    record_export,
    record_finetune,
)
from modelyard.registry import Registry
from modelyard.registry.artifacts import pin_artifact
from modelyard.registry.protocol import VersionCreate, VersionOut
from modelyard.store import Store


@dataclass(frozen=True)
class Artifact:
    """The version to register, and what the lineage says of its artifact."""

    engine_kind: str
    uri: str
    parameters: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)


def register_finetune(store: Store, request: FineTuneRequest, actor: str) -> FineTuneOut:
    """Check the request, the artifact and the export (made now for ``name@version`` when
    that version has none in the format and split), then register the version and record
    its lineage."""
    artifact = _artifact(request)
    export = _export(store, request, actor)
    version = Registry(store).add_version(
        request.model,
        VersionCreate(
            engine_kind=artifact.engine_kind,
            artifact_uri=artifact.uri,
            parameters=artifact.parameters,
            notes=_notes(request, export),
        ),
        actor=actor,
    )
    lineage = _lineage(store, request, export, version, artifact)
    registered = {
        "model": version.model,
        "version": version.number,
        "engine_kind": version.engine_kind,
        "artifact_uri": version.artifact_uri,
        "artifact_sha256": version.artifact_sha256,
        "lineage": lineage,
        "notes": version.notes,
    }
    return record_finetune(store, registered, actor)


def _artifact(request: FineTuneRequest) -> Artifact:
    """Exactly one of a GGUF file (a real one) or an upstream model, with parameters the
    kind accepts."""
    if (request.gguf is None) == (request.upstream is None):
        raise InvalidFineTune(
            "give exactly one of gguf (a GGUF file's path) or upstream (the base URL of an "
            "OpenAI-compatible server)",
            param="gguf",
        )
    artifact = _gguf(request) if request.gguf is not None else _upstream(request)
    try:
        check_parameters(artifact.engine_kind, artifact.parameters)
    except EngineError as error:
        raise InvalidFineTune(str(error), param="parameters") from None
    return artifact


def _gguf(request: FineTuneRequest) -> Artifact:
    for name in ("upstream_model", "api_key_env"):
        if getattr(request, name) is not None:
            raise InvalidFineTune(f"{name} goes with upstream, not with gguf", param=name)
    path = Path(str(request.gguf)).expanduser().resolve()
    try:
        header = gguf_header(path)
    except NotGguf as error:
        raise InvalidFineTune(str(error), param="gguf") from None
    facts = {"gguf": {"version": header.version, "tensors": header.tensors}}
    return Artifact("llamacpp", str(path), dict(request.parameters), facts)


def _upstream(request: FineTuneRequest) -> Artifact:
    if request.upstream_model is None:
        raise InvalidFineTune(
            "upstream needs upstream_model: the model name the server serves it as",
            param="upstream_model",
        )
    url = str(request.upstream)
    if not url.startswith(("http://", "https://")):
        raise InvalidFineTune(f"'{url}' is not an http(s) URL", param="upstream")
    pin_artifact(url)  # a URL without a host is refused here
    parameters = {**request.parameters, "model": request.upstream_model}
    if request.api_key_env is not None:
        parameters["api_key_env"] = request.api_key_env
    return Artifact("upstream", url, parameters, {"upstream_model": request.upstream_model})


def _export(store: Store, request: FineTuneRequest, actor: str) -> ExportOut:
    """The export named: by id, or the dataset version's in the format and split asked
    (the latest recorded, else made and recorded now)."""
    if "@" not in request.from_export:
        for name in ("format", "split"):
            if getattr(request, name) is not None:
                raise InvalidFineTune(
                    f"export {request.from_export} has its own {name}: give {name} only with "
                    "a dataset version (name@version)",
                    param=name,
                )
        return get_export(store, int(request.from_export))
    dataset = dataset_of(store, request.from_export)
    format = request.format or "openai"
    found = latest_export(store, request.from_export, format, request.split)
    if found is not None:
        return found
    tally = measure(store, dataset, format, request.split)
    return record_export(store, manifest(dataset, format, request.split, tally), actor)


def _notes(request: FineTuneRequest, export: ExportOut) -> str:
    trainer = request.trainer or "an external trainer"
    job = f" (job {request.trainer_job})" if request.trainer_job else ""
    base = f"; base {request.base}" if request.base else ""
    return (
        f"fine-tuned by {trainer}{job} on {export.dataset} ({export.format} export "
        f"{export.id}, sha256 {export.sha256[:12]}){base}"
        + (f"; {request.notes}" if request.notes else "")
    )


def _lineage(
    store: Store,
    request: FineTuneRequest,
    export: ExportOut,
    version: VersionOut,
    artifact: Artifact,
) -> dict[str, Any]:
    """Where the version comes from, as its record keeps it."""
    dataset = dataset_of(store, export.dataset)
    return {
        "kind": "finetune",
        "export": {
            "id": export.id,
            "format": export.format,
            "split": export.split,
            "sha256": export.sha256,
            "bytes": export.bytes,
            "conversations": export.counts.written,
        },
        "dataset": {
            "name": export.dataset,
            "sha256": export.dataset_sha256,
            "kind": dataset.source.get("kind"),
        },
        "base": request.base,
        "trainer": {
            "name": request.trainer,
            "job": request.trainer_job,
            "hyperparameters": dict(request.hyperparameters),
        },
        "artifact": {
            "engine_kind": version.engine_kind,
            "uri": version.artifact_uri,
            "sha256": version.artifact_sha256,
            **artifact.facts,
        },
    }
