"""Tables of the store. Business rules live in the packages that use them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on SQLite (which drops tzinfo) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    task: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number", name="uq_version_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    engine_kind: Mapped[str] = mapped_column(String(64))
    artifact_uri: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(256))
    notes: Mapped[str] = mapped_column(Text, default="")


class AliasRow(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name", name="uq_alias_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AliasMoveRow(Base):
    """Append-only history of alias moves."""

    __tablename__ = "alias_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    from_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    to_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text, default="")
    moved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of its secret is kept (and the previous one while a
    rotation's grace period lasts)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    previous_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    allowed_routes: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(256))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RoutePolicyRow(Base):
    """Guard policy of one route (a public model name, or ``*`` for every other route)."""

    __tablename__ = "route_policies"

    route: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_by: Mapped[str] = mapped_column(String(256))


class AuditEventRow(Base):
    """Append-only record of administrative actions."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(256))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RequestLogRow(Base):
    """One row per authenticated request. ``content`` is encrypted (or absent)."""

    __tablename__ = "request_log"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str | None] = mapped_column(String(160), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    pii: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    injection: Mapped[list[str]] = mapped_column(JSON, default=list)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Added by 0003_observe; indexed by 0013_user_index (a user's data on request).
    user: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    overhead_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    energy_wh: Mapped[float] = mapped_column(Float, default=0.0)
    carbon_g: Mapped[float] = mapped_column(Float, default=0.0)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    prompt_chars: Mapped[int] = mapped_column(Integer, default=0)
    # Added by 0006_release: the version that failed before a fallback answered.
    fallback_from: Mapped[str | None] = mapped_column(String(160), nullable=True)
    # Added by 0007_answers: how the answer ended, the format asked, the tool calls made
    # (names; their arguments are in the sealed content) and a JSON format's failure.
    finish_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    response_format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    schema_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tool_calls: Mapped[int] = mapped_column(Integer, default=0)
    tool_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    format_error: Mapped[str | None] = mapped_column(String(32), nullable=True)


class FeedbackRow(Base):
    """A judgement of one logged request (by a person, a judge model or code)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # boolean | number | category
    number: Mapped[float | None] = mapped_column(Float, nullable=True)
    category: Mapped[str | None] = mapped_column(String(128), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))  # human | judge | code
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DriftReportRow(Base):
    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    route: Mapped[str] = mapped_column(String(128), index=True)
    reference_from: Mapped[datetime] = mapped_column(UTCDateTime)
    reference_to: Mapped[datetime] = mapped_column(UTCDateTime)
    current_from: Mapped[datetime] = mapped_column(UTCDateTime)
    current_to: Mapped[datetime] = mapped_column(UTCDateTime)
    drifted: Mapped[bool] = mapped_column(Boolean)
    share_drifted: Mapped[float] = mapped_column(Float)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AlertRuleRow(Base):
    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_by: Mapped[str] = mapped_column(String(256))


class AlertEventRow(Base):
    """Append-only: a rule started firing or resolved."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # firing | resolved
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    deliveries: Mapped[list[Any]] = mapped_column(JSON, default=list)


class EvalRunRow(Base):
    """One evaluation of a task against a model name, through the serving path."""

    __tablename__ = "eval_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_sha256: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(160))
    versions: Mapped[list[str]] = mapped_column(JSON, default=list)
    item_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))


class EvalItemRow(Base):
    """One item's answer in a run; a resumed run skips the items it already holds."""

    __tablename__ = "eval_items"
    __table_args__ = (UniqueConstraint("run_id", "item_index", name="uq_eval_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id"), index=True)
    item_index: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str | None] = mapped_column(String(160), nullable=True)
    question: Mapped[str] = mapped_column(Text, default="")
    prediction: Mapped[str] = mapped_column(Text, default="")
    extracted: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[Any] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)


class EvalJudgementRow(Base):
    """A judge model's verdict on one item: its prompt and raw output are kept with it."""

    __tablename__ = "eval_judgements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id"), index=True)
    item_index: Mapped[int] = mapped_column(Integer)
    judge: Mapped[str] = mapped_column(String(128))  # the judgement's name
    kind: Mapped[str] = mapped_column(String(16))  # rubric | pairwise
    model: Mapped[str] = mapped_column(String(160))  # the judge model (route or version)
    prompts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    outputs: Mapped[list[str]] = mapped_column(JSON, default=list)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DatasetRow(Base):
    """One immutable version of a named dataset; ``sha256`` hashes its items."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_dataset_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(256))


class DatasetItemRow(Base):
    __tablename__ = "dataset_items"
    __table_args__ = (UniqueConstraint("dataset_id", "item_index", name="uq_dataset_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    item_index: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Added by 0008_curation: a curated item's split (train, dev, test) and the fingerprint
    # of its input, which the train-versus-eval overlap check looks up.
    split: Mapped[str | None] = mapped_column(String(16), nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class TrafficPolicyRow(Base):
    """How one route's traffic is split: stable alias, weighted candidates, shadows,
    fallback chain and breaker settings (``policy`` holds ``routing.protocol.TrafficPolicy``)."""

    __tablename__ = "traffic_policies"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(256))


class TrafficPolicyChangeRow(Base):
    """Append-only history of traffic policies; its largest id is part of the routing marker."""

    __tablename__ = "traffic_policy_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RolloutRow(Base):
    """A gradual release of a candidate version against the version an alias points to."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    baseline: Mapped[int] = mapped_column(Integer)
    candidate: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    weight: Mapped[float] = mapped_column(Float, default=0.0)
    weight_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))
    revision: Mapped[int] = mapped_column(Integer, default=0)


class ExperimentRow(Base):
    """An A/B experiment: a fixed split of one route's traffic between versions."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))
    revision: Mapped[int] = mapped_column(Integer, default=0)


class ReleaseMeasurementRow(Base):
    """One analysis of a rollout step or an experiment: per-metric statistics and outcome."""

    __tablename__ = "release_measurements"
    __table_args__ = (
        UniqueConstraint("subject", "subject_id", "step", "seq", name="uq_release_measurement"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(16))  # rollout | experiment
    subject_id: Mapped[int] = mapped_column(Integer, index=True)
    step: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReleaseEventRow(Base):
    """What happened to a rollout or an experiment, in order (started, weight, paused, ...)."""

    __tablename__ = "release_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(256))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LeaseRow(Base):
    """A lease one replica holds to run a singleton job (the release controller)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TuneStudyRow(Base):
    """A tuning study: its request, the items it searches and holds out, what it found."""

    __tablename__ = "tune_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(16))  # running | interrupted | failed | done
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    objective: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8))  # maximize | minimize
    search_items: Mapped[list[Any]] = mapped_column(JSON)
    holdout_items: Mapped[list[Any]] = mapped_column(JSON)
    partition: Mapped[dict[str, Any]] = mapped_column(JSON)
    importances: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    confirmation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TuneTrialRow(Base):
    """One trial of a study: the parameters asked, the eval run that measured them."""

    __tablename__ = "tune_trials"
    __table_args__ = (UniqueConstraint("study_id", "number", name="uq_tune_trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("tune_studies.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # running | complete | failed
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("eval_runs.id"), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    constraints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    feasible: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LabelRunRow(Base):
    """A teacher labelling a dataset version through the serving path (improve/distil)."""

    __tablename__ = "label_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(128), index=True)
    dataset_version: Mapped[int] = mapped_column(Integer)
    teacher: Mapped[str] = mapped_column(String(160))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What makes two runs the same labelling (dataset version, teacher, spec): a re-run
    # resumes the unfinished run of its key.
    key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # running | stopped | failed | done
    item_count: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    versions: Mapped[list[str]] = mapped_column(JSON, default=list)
    result_dataset: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(256))
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LabelItemRow(Base):
    """One item's answer from the teacher; a resumed run skips the items it holds."""

    __tablename__ = "label_items"
    __table_args__ = (UniqueConstraint("run_id", "item_index", name="uq_label_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("label_runs.id"), index=True)
    item_index: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str | None] = mapped_column(String(160), nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")
    label: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: failed or unmapped
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)


class DistillationRow(Base):
    """A student trained on a labelled dataset version and registered as a version."""

    __tablename__ = "distillations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dataset: Mapped[str] = mapped_column(String(128))
    dataset_version: Mapped[int] = mapped_column(Integer)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # running | failed | done
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(256))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CompressionRow(Base):
    """Quantised variants of a version, registered and measured beside it (improve/compress)."""

    __tablename__ = "compressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)  # the parent
    engine_kind: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # running | failed | done
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    # The table's rows: the parent first, then one per variant, with measurements.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(256))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReviewRow(Base):
    """People going through a dataset version item by item (improve/review)."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(128), index=True)
    dataset_version: Mapped[int] = mapped_column(Integer)
    # The request (filter, instructions, label field, label set, lease length).
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | finished
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(256))
    # Written first by every change: the row lock serializes a review's changes.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    result_dataset: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ReviewItemRow(Base):
    """One item of a review: its decision (None while undecided) and who holds it."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("review_id", "item_index", name="uq_review_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    item_index: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    correction: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    leased_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReviewEventRow(Base):
    """Append-only: each decision or skip with the state it replaced (an undo restores it)."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    item_index: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(256), index=True)
    action: Mapped[str] = mapped_column(String(16))  # accept | correct | reject | skip
    correction: Mapped[str | None] = mapped_column(Text, nullable=True)
    before: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LiveJudgementRow(Base):
    """A judge's score of one sampled live answer (a route's ``live_judge`` policy), linked
    to the request (``request_id``) and the judge call's own log row (``judge_request_id``).
    ``quality`` is the score on 0-1 (``(score - low) / (high - low)``); None: no score."""

    __tablename__ = "live_judgements"
    __table_args__ = (Index("ix_live_judgements_route_at", "route", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    judge_request_id: Mapped[str] = mapped_column(String(80))
    route: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(160))
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    judge: Mapped[str | None] = mapped_column(String(160), nullable=True)  # its version
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    scale_low: Mapped[int] = mapped_column(Integer)
    scale_high: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ConsolePreferenceRow(Base):
    """The console language a user (an API key) chose, applied when they log in anywhere."""

    __tablename__ = "console_preferences"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    language: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
