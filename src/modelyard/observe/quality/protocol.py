"""Wire types of live quality: judged samples, the online quality per route and version
over time, and what this replica's live judge did."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class LiveJudgementOut(BaseModel):
    """One sampled answer as a judge scored it."""

    id: int
    request_id: str = Field(description="The judged request (GET /api/requests/{id}).")
    judge_request_id: str = Field(description="The judge call's own request-log row.")
    route: str
    version: str = Field(description="The version that answered, 'model@n'.")
    variant: str | None
    judge: str | None = Field(description="The judge's version, 'model@n'.")
    score: float | None = Field(description="On the judge's scale; null: no score.")
    quality: float | None = Field(description="The score on 0-1.")
    scale: tuple[int, int]
    error: str | None
    latency_ms: float
    cost: float
    at: datetime


class LiveJudgementList(BaseModel):
    object: Literal["list"] = "list"
    data: list[LiveJudgementOut]


class QualityPoint(BaseModel):
    """One time bucket of a version's online quality."""

    at: datetime = Field(description="The bucket's start (buckets are aligned to the epoch).")
    judged: int = Field(description="Answers scored in the bucket.")
    mean: float = Field(description="Their mean quality, 0-1.")


class QualitySeries(BaseModel):
    """A route's version's online quality over the window."""

    route: str
    version: str
    judged: int = Field(description="Answers scored in the window.")
    unscored: int = Field(description="Samples the judge gave no score for (or failed on).")
    mean: float | None = Field(description="Mean quality over the window, 0-1.")
    points: list[QualityPoint]


class LiveJudgeStats(BaseModel):
    """What this replica's live judge did since it started (samples, by outcome)."""

    queued: int
    in_flight: int
    sampled: int = Field(description="Samples queued for the judge.")
    judged: int
    unscored: int
    failed: int
    dropped: int = Field(description="Samples dropped: the queue was full.")
    over_budget: int = Field(description="Samples skipped: the route's budget was spent.")


class LiveQualityOut(BaseModel):
    """Online quality per route and version over a window, in time buckets."""

    since: datetime
    until: datetime
    bucket_s: int
    series: list[QualitySeries]
    replica: LiveJudgeStats | None = Field(
        default=None, description="This replica's live judge (none: read from the store alone)."
    )
