"""Live judgements in the store: written by the live judge (off the request path), read by
the API, alerts and release analyses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from modelyard.errors import ModelyardError
from modelyard.observe.quality.protocol import (
    LiveJudgementOut,
    LiveJudgeStats,
    LiveQualityOut,
    QualityPoint,
    QualitySeries,
)
from modelyard.store import Store
from modelyard.store.tables import LiveJudgementRow

# The most judgements one series read aggregates; windows past it use their newest rows.
MAX_ROWS = 200_000
MAX_BUCKETS = 2000  # points per series a window may be cut into


class QualityWindowRefused(ModelyardError):
    """A window cut into more buckets than a chart can show."""

    status = 400
    code = "invalid_window"
    param = "bucket_s"


@dataclass(frozen=True)
class LiveJudgementRecord:
    """A judged sample, as the live judge stores it."""

    request_id: str
    judge_request_id: str
    route: str
    version: str
    variant: str | None
    judge: str | None
    score: float | None
    quality: float | None
    scale: tuple[int, int]
    error: str | None
    latency_ms: float
    cost: float
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class LiveJudgements:
    def __init__(self, store: Store) -> None:
        self._store = store

    def save(self, record: LiveJudgementRecord) -> None:
        low, high = record.scale
        with self._store.session() as session:
            session.add(
                LiveJudgementRow(
                    request_id=record.request_id,
                    judge_request_id=record.judge_request_id,
                    route=record.route,
                    version=record.version,
                    variant=record.variant,
                    judge=record.judge,
                    score=record.score,
                    quality=record.quality,
                    scale_low=low,
                    scale_high=high,
                    error=record.error,
                    latency_ms=record.latency_ms,
                    cost=record.cost,
                    at=record.at,
                )
            )

    def recent(
        self, route: str | None = None, version: str | None = None, limit: int = 100
    ) -> list[LiveJudgementOut]:
        """The newest judgements, of a route (and version) when named."""
        query = _of(select(LiveJudgementRow), route, version)
        query = query.order_by(LiveJudgementRow.id.desc()).limit(limit)
        with self._store.session() as session:
            return [_out(row) for row in session.scalars(query)]

    def quality(
        self,
        *,
        hours: float,
        bucket_s: int,
        route: str | None = None,
        replica: LiveJudgeStats | None = None,
        now: datetime | None = None,
    ) -> LiveQualityOut:
        """Online quality per route and version over the last ``hours``, in buckets."""
        if hours * 3600 / bucket_s > MAX_BUCKETS:
            raise QualityWindowRefused(
                f"{hours:g} h in buckets of {bucket_s} s makes more than {MAX_BUCKETS} "
                "points; use longer buckets or a shorter window"
            )
        until = now or datetime.now(UTC)
        since = until - timedelta(hours=hours)
        series = self.series(since, until, bucket_s, route)
        return LiveQualityOut(
            since=since, until=until, bucket_s=bucket_s, series=series, replica=replica
        )

    def series(
        self, since: datetime, until: datetime, bucket_s: int, route: str | None = None
    ) -> list[QualitySeries]:
        """Each route's versions' quality in the window, in buckets of ``bucket_s``."""
        t = LiveJudgementRow
        query = select(t.route, t.version, t.at, t.quality).where(t.at >= since, t.at <= until)
        if route is not None:
            query = query.where(t.route == route)
        with self._store.session() as session:
            rows = session.execute(query.order_by(t.at.desc()).limit(MAX_ROWS)).all()
        return bucketed([(row[0], row[1], row[2], row[3]) for row in rows], bucket_s)


def bucketed(
    rows: Iterable[tuple[str, str, datetime, float | None]], bucket_s: int
) -> list[QualitySeries]:
    """Judgements (route, version, at, quality) as series per route and version."""
    scored: dict[tuple[str, str], dict[int, list[float]]] = {}
    unscored: dict[tuple[str, str], int] = {}
    for route, version, at, quality in rows:
        key = (route, version)
        buckets = scored.setdefault(key, {})
        unscored.setdefault(key, 0)
        if quality is None:
            unscored[key] += 1
            continue
        index = int(at.timestamp() // bucket_s)  # buckets aligned to the epoch: stable
        buckets.setdefault(index, []).append(quality)
    series = []
    for (route, version), buckets in sorted(scored.items()):
        values = [q for bucket in buckets.values() for q in bucket]
        points = [
            QualityPoint(
                at=datetime.fromtimestamp(index * bucket_s, UTC),
                judged=len(bucket),
                mean=sum(bucket) / len(bucket),
            )
            for index, bucket in sorted(buckets.items())
        ]
        series.append(
            QualitySeries(
                route=route,
                version=version,
                judged=len(values),
                unscored=unscored[(route, version)],
                mean=sum(values) / len(values) if values else None,
                points=points,
            )
        )
    return series


def quality_by_request(session: Session, route: str, since: datetime) -> dict[str, float]:
    """The quality of each request of ``route`` judged since ``since`` (for release
    analyses, which assign requests to variants by their log rows)."""
    t = LiveJudgementRow
    query = (
        select(t.request_id, t.quality)
        .where(t.route == route, t.at >= since, t.quality.is_not(None))
        .limit(MAX_ROWS)
    )
    return {
        request_id: quality for request_id, quality in session.execute(query) if quality is not None
    }


def _of(query: Select[Any], route: str | None, version: str | None) -> Select[Any]:
    if route is not None:
        query = query.where(LiveJudgementRow.route == route)
    if version is not None:
        query = query.where(LiveJudgementRow.version == version)
    return query


def _out(row: LiveJudgementRow) -> LiveJudgementOut:
    return LiveJudgementOut(
        id=row.id,
        request_id=row.request_id,
        judge_request_id=row.judge_request_id,
        route=row.route,
        version=row.version,
        variant=row.variant,
        judge=row.judge,
        score=row.score,
        quality=row.quality,
        scale=(row.scale_low, row.scale_high),
        error=row.error,
        latency_ms=row.latency_ms,
        cost=row.cost,
        at=row.at,
    )
