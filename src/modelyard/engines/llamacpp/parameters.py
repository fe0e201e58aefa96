"""What a ``llamacpp`` version may set (``LlamaCppParameters``) and the kind's settings, the
defaults of every version (``LlamaCppSettings``, ``MODELYARD_LLAMACPP_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from modelyard.config import EngineSettings
from modelyard.engines.parameters import EngineParameters

# The parameters that are sampling defaults: they apply where a request leaves a field out.
SAMPLING_DEFAULTS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty")


class LlamaCppSettings(EngineSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_LLAMACPP_", extra="ignore")

    n_ctx: int = Field(
        default=2048, ge=1, description="Context window of each llama.cpp sequence, in tokens."
    )
    max_num_seqs: int = Field(
        default=8,
        ge=1,
        description="Sequences a llama.cpp version decodes together in one batch; "
        "each holds a KV cache of `MODELYARD_LLAMACPP_N_CTX` tokens.",
    )
    max_waiting: int = Field(
        default=64,
        ge=0,
        description="Requests that may wait for a free sequence; beyond that the API "
        "answers 503 with Retry-After.",
    )
    prefill_chunk: int = Field(
        default=64,
        ge=1,
        description="Prompt tokens read per scheduler step, so long prompts are prefilled "
        "in slices between decode steps of running streams.",
    )
    prefix_cache: bool = Field(
        default=True,
        description="Reuse the KV cache of a finished sequence for a new prompt that starts "
        "with the same tokens (a shared system prompt is read once).",
    )
    threads: int = Field(
        default=0, ge=0, description="CPU threads for llama.cpp; 0 means all cores."
    )


class LlamaCppParameters(EngineParameters):
    """Each engine setting may be overridden per version; sampling defaults are per version."""

    n_ctx: int | None = Field(
        default=None, ge=1, description="Context window per sequence; empty: the setting."
    )
    max_num_seqs: int | None = Field(
        default=None, ge=1, description="Sequences decoded together; empty: the setting."
    )
    max_waiting: int | None = Field(
        default=None, ge=0, description="Requests that may wait; empty: the setting."
    )
    prefill_chunk: int | None = Field(
        default=None, ge=1, description="Prompt tokens read per step; empty: the setting."
    )
    prefix_cache: bool | None = Field(
        default=None, description="Reuse finished sequences' KV caches; empty: the setting."
    )
    threads: int | None = Field(
        default=None, ge=0, description="CPU threads (0: all cores); empty: the setting."
    )
    temperature: float | None = Field(
        default=None, ge=0, description="Where a request leaves it out; empty: 1.0."
    )
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="Where a request leaves it out; empty: 1.0."
    )
    top_k: int | None = Field(default=None, ge=0, description="Top-k sampling; empty: 40.")
    min_p: float | None = Field(
        default=None, ge=0, le=1, description="Min-p sampling; empty: 0.05."
    )
    repeat_penalty: float | None = Field(
        default=None, gt=0, description="Penalty of repeated tokens; empty: 1.0 (none)."
    )

    def sampling_defaults(self) -> dict[str, float]:
        """The sampling defaults this version sets."""
        return self.model_dump(include=set(SAMPLING_DEFAULTS), exclude_none=True)
