"""What a release analysis compares: each variant's requests on one route over the same
period, read from the request log and feedback (background work, never the request path).

A request counts for the variant it was assigned, whichever version finally answered: a
candidate that failed over to a fallback is charged an error. Client errors (4xx, 499)
say nothing about a version and are left out of the metrics; shadow copies are left out
of everything. Each latency and TTFT comes with its request's prompt tokens, the covariate
that variance reduction (CUPED, ``estimators.py``) adjusts for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from modelyard.observe.quality.judgements import quality_by_request
from modelyard.store import Store
from modelyard.store.tables import FeedbackRow, RequestLogRow

# The most rows one analysis reads; windows past it use their newest rows.
MAX_ROWS = 500_000
SERVED_ENDPOINTS = ("chat.completions", "completions", "responses")


@dataclass
class VariantData:
    assigned: int = 0  # every request routed to the variant (what SRM counts)
    users: set[str] = field(default_factory=set)
    errors: list[float] = field(default_factory=list)  # 1.0 per server error or fallback
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    prompt_tokens: list[float] = field(default_factory=list)  # one per latency_ms value
    ttft_prompt_tokens: list[float] = field(default_factory=list)  # one per ttft_ms value
    cost: list[float] = field(default_factory=list)
    feedback: dict[str, list[float]] = field(default_factory=dict)
    quality: list[float] = field(default_factory=list)  # live-judge scores (0-1) of requests


@dataclass(frozen=True)
class Observations:
    since: datetime
    until: datetime
    variants: dict[str, VariantData]

    def of(self, variant: str) -> VariantData:
        return self.variants.get(variant, VariantData())


def observe(
    store: Store,
    route: str,
    variants: Iterable[str],
    since: datetime,
    until: datetime,
    feedback_names: Iterable[str] = (),
    *,
    unassigned: str | None = None,
    limit: int = MAX_ROWS,
) -> Observations:
    """Each variant's requests of ``route`` in the window (the newest ``limit``); requests
    no policy assigned count for the variant ``unassigned`` when one is named."""
    names = list(variants)
    t = RequestLogRow
    out = {name: VariantData() for name in names}
    assigned = t.variant.in_(names)
    with store.session() as session:
        rows = session.execute(
            select(
                t.id,
                t.variant,
                t.status,
                t.fallback_from,
                t.latency_ms,
                t.ttft_ms,
                t.cost,
                t.user,
                t.prompt_tokens,
            )
            .where(
                t.route == route,
                t.at >= since,
                t.at <= until,
                assigned if unassigned is None else or_(assigned, t.variant.is_(None)),
                t.endpoint.in_(SERVED_ENDPOINTS),
            )
            .order_by(t.at.desc())
            .limit(limit)
        ).all()
        variant_of = _count(rows, out, unassigned)
        if variant_of:
            _add_quality(session, route, variant_of, out, since)
        wanted = sorted(set(feedback_names))
        if wanted and variant_of:
            _add_feedback(session, wanted, variant_of, out, since)
    return Observations(since, until, out)


def _count(
    rows: Iterable[Any], out: dict[str, VariantData], unassigned: str | None
) -> dict[str, str]:
    """Adds each request row to its variant's data; returns the variant of every request
    that counts (4xx left out), for its feedback."""
    variant_of: dict[str, str] = {}
    for request_id, variant, status, fallback_from, latency, ttft, cost, user, prompt in rows:
        variant = variant or unassigned
        if variant is None:
            continue
        data = out[variant]
        data.assigned += 1
        if user:
            data.users.add(user)
        if 400 <= status < 500:
            continue
        variant_of[request_id] = variant
        failed = status >= 500 or fallback_from is not None
        data.errors.append(1.0 if failed else 0.0)
        if status < 400:
            data.latency_ms.append(float(latency))
            data.prompt_tokens.append(float(prompt))
            data.cost.append(float(cost))
            if ttft is not None:
                data.ttft_ms.append(float(ttft))
                data.ttft_prompt_tokens.append(float(prompt))
    return variant_of


def _add_quality(
    session: Session,
    route: str,
    variant_of: dict[str, str],
    out: dict[str, VariantData],
    since: datetime,
) -> None:
    """The live judge's score of each of the window's judged requests (the route's
    ``live_judge`` policy samples them at random, so each variant's scores are a random
    sample of its answers)."""
    for request_id, quality in quality_by_request(session, route, since).items():
        variant = variant_of.get(request_id)
        if variant is not None:
            out[variant].quality.append(quality)


def _add_feedback(
    session: Session,
    names: list[str],
    variant_of: dict[str, str],
    out: dict[str, VariantData],
    since: datetime,
) -> None:
    """The latest numeric value of each named feedback on the window's requests (a boolean
    is 1 or 0; a judge's score its number)."""
    f = FeedbackRow
    latest = (
        select(func.max(f.id))
        .where(f.name.in_(names), f.at >= since, f.number.is_not(None))
        .group_by(f.request_id, f.name)
        .scalar_subquery()
    )
    query = select(f.request_id, f.name, f.number).where(f.id.in_(latest))
    for request_id, name, number in session.execute(query):
        variant = variant_of.get(request_id)
        if variant is not None and number is not None:
            out[variant].feedback.setdefault(name, []).append(float(number))
