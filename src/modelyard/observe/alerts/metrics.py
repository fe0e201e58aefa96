"""The value of an alert metric over a look-back window, from SQL aggregates.

Every function returns ``(value, samples)``: ``value`` is None when the window holds
nothing to measure; ``samples`` is what ``min_requests`` is compared with (requests,
feedback rows or drift reports).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, case, cast, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from modelyard.observe.alerts.protocol import AlertRule
from modelyard.store.tables import (
    DriftReportRow,
    FeedbackRow,
    LiveJudgementRow,
    ReleaseEventRow,
    RequestLogRow,
    RolloutRow,
)

Measurement = tuple[float | None, int]
# The most recent drift reports read per evaluation (one per route is what counts).
MAX_DRIFT_REPORTS = 1000

t = RequestLogRow


def measure(session: Session, rule: AlertRule, now: datetime) -> Measurement:
    """The value of ``rule``'s metric in the window ``(now - window_s, now]``."""
    since = now - timedelta(seconds=rule.window_s)
    return MEASURES[rule.metric](session, rule, since, now)


def _in_window(query: Select[Any], rule: AlertRule, since: datetime, now: datetime) -> Select[Any]:
    # shadow copies and live-judge calls are not the route's own traffic
    side = or_(t.variant.is_(None), t.variant.not_in(("shadow", "live_judge")))
    query = query.where(t.at > since, t.at <= now, side)
    return query if rule.route is None else query.where(t.route == rule.route)


def _aggregate(expression: Callable[[], ColumnElement[Any]], *, share: bool) -> Measure:
    """A metric that is one SQL aggregate over the window's requests (or its share)."""

    def run(session: Session, rule: AlertRule, since: datetime, now: datetime) -> Measurement:
        query = _in_window(select(func.count(), expression()).select_from(t), rule, since, now)
        count, total = session.execute(query).one()
        count = int(count)
        if count == 0:
            return (None if share else 0.0), 0
        value = float(total or 0)
        return (value / count if share else value), count

    return run


def _flagged(column: InstrumentedAttribute[Any], empty: str) -> Callable[[], ColumnElement[Any]]:
    """Requests whose JSON ``column`` is not empty (JSON text compares alike on both DBs)."""
    return lambda: func.sum(case((cast(column, Text).in_([empty, "null"]), 0), else_=1))


def _count_where(condition: Callable[[], ColumnElement[bool]]) -> Callable[[], Any]:
    return lambda: func.sum(case((condition(), 1), else_=0))


def _percentile(column: InstrumentedAttribute[Any], q: float) -> Measure:
    """Linear-interpolated percentile (PostgreSQL's ``percentile_cont``). Elsewhere the
    two ranks around it are read with ORDER BY … OFFSET, so at most two rows come back."""

    def run(session: Session, rule: AlertRule, since: datetime, now: datetime) -> Measurement:
        requests = int(session.scalar(_in_window(select(func.count()), rule, since, now)) or 0)
        if requests == 0:
            return None, 0
        present = _in_window(select(column), rule, since, now).where(column.is_not(None))
        if session.get_bind().dialect.name == "postgresql":
            sub = present.subquery()
            query = select(func.percentile_cont(q).within_group(sub.c[column.key]))
            value = session.scalar(query)
            return (None if value is None else float(value)), requests
        n = int(session.scalar(select(func.count()).select_from(present.subquery())) or 0)
        if n == 0:
            return None, requests
        rank = q * (n - 1)
        low = math.floor(rank)
        ranks = [float(v) for v in session.scalars(present.order_by(column).offset(low).limit(2))]
        high = ranks[1] if len(ranks) > 1 else ranks[0]
        return ranks[0] + (high - ranks[0]) * (rank - low), requests

    return run


def _negative_feedback(
    session: Session, rule: AlertRule, since: datetime, now: datetime
) -> Measurement:
    f = FeedbackRow
    negative = func.sum(case((f.number == 0, 1), else_=0))
    query = (
        select(func.count(), negative)
        .select_from(f)
        .where(f.kind == "boolean", f.at > since, f.at <= now)
    )
    if rule.route is not None:
        query = query.join(t, t.id == f.request_id).where(t.route == rule.route)
    count, negatives = session.execute(query).one()
    count = int(count)
    return (None, 0) if count == 0 else (int(negatives or 0) / count, count)


def _drift(session: Session, rule: AlertRule, since: datetime, now: datetime) -> Measurement:
    """The latest report's share in the window; for all routes, the largest among each
    route's latest report."""
    d = DriftReportRow
    query = select(d.route, d.share_drifted).where(d.at > since, d.at <= now)
    if rule.route is not None:
        query = query.where(d.route == rule.route)
    query = query.order_by(d.at.desc(), d.id.desc()).limit(MAX_DRIFT_REPORTS)
    latest: dict[str, float] = {}
    reports = 0
    for route, share in session.execute(query):
        reports += 1
        latest.setdefault(route, float(share))
    return (max(latest.values()) if latest else None), reports


def _rollout_aborts(
    session: Session, rule: AlertRule, since: datetime, now: datetime
) -> Measurement:
    """Rollouts aborted in the window (by analysis or by hand); the count is its samples,
    so a window without any neither fires nor stays firing."""
    e, r = ReleaseEventRow, RolloutRow
    query = (
        select(func.count())
        .select_from(e)
        .join(r, r.id == e.subject_id)
        .where(e.subject == "rollout", e.kind == "aborted", e.at > since, e.at <= now)
    )
    if rule.route is not None:
        query = query.where(r.model == rule.route)
    count = int(session.scalar(query) or 0)
    return float(count), count


def _online_quality(
    session: Session, rule: AlertRule, since: datetime, now: datetime
) -> Measurement:
    """The mean live-judge quality (0-1) of the answers judged in the window; the judged
    answers are its samples."""
    j = LiveJudgementRow
    query = select(func.count(), func.avg(j.quality)).where(
        j.at > since, j.at <= now, j.quality.is_not(None)
    )
    if rule.route is not None:
        query = query.where(j.route == rule.route)
    count, mean = session.execute(query).one()
    return (None, 0) if not count else (float(mean), int(count))


Measure = Callable[[Session, AlertRule, datetime, datetime], Measurement]

MEASURES: dict[str, Measure] = {
    "requests": _aggregate(lambda: func.count(), share=False),
    "error_rate": _aggregate(_count_where(lambda: t.status >= 500), share=True),
    "client_error_rate": _aggregate(
        _count_where(lambda: (t.status >= 400) & (t.status < 500)), share=True
    ),
    "tokens": _aggregate(lambda: func.sum(t.prompt_tokens + t.completion_tokens), share=False),
    "cost": _aggregate(lambda: func.sum(t.cost), share=False),
    "energy_wh": _aggregate(lambda: func.sum(t.energy_wh), share=False),
    "pii_detections": _aggregate(_flagged(t.pii, "{}"), share=False),
    "injection_flags": _aggregate(_flagged(t.injection, "[]"), share=False),
    "p50_latency_ms": _percentile(t.latency_ms, 0.50),
    "p95_latency_ms": _percentile(t.latency_ms, 0.95),
    "p95_ttft_ms": _percentile(t.ttft_ms, 0.95),
    "negative_feedback_rate": _negative_feedback,
    "drift": _drift,
    "rollout_aborts": _rollout_aborts,
    "online_quality": _online_quality,
}
