"""What a ``classifier`` version may set (``ClassifierParameters``) and the kind's settings,
the defaults of every version (``ClassifierSettings``, ``MODELYARD_CLASSIFIER_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from modelyard.config import EngineSettings
from modelyard.engines.parameters import EngineParameters


class ClassifierSettings(EngineSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_CLASSIFIER_", extra="ignore")

    threads: int = Field(
        default=0, ge=0, description="CPU threads of the encoder's forward pass; 0: all cores."
    )
    max_batch: int = Field(
        default=32, ge=1, description="Texts of concurrent requests classified in one pass."
    )
    max_wait_ms: float = Field(
        default=1.0,
        ge=0,
        description="How long a request waits for others to join its pass (latency against "
        "throughput).",
    )


class ClassifierParameters(EngineParameters):
    """Each setting may be overridden per version."""

    threads: int | None = Field(
        default=None, ge=0, description="Encoder threads; empty: the setting."
    )
    max_batch: int | None = Field(
        default=None, ge=1, description="Texts per pass; empty: the setting."
    )
    max_wait_ms: float | None = Field(
        default=None, ge=0, description="Wait for a pass to fill; empty: the setting."
    )
