"""Time series of the request log for the monitoring dashboard: per time bucket and
version, throughput, errors, latency percentiles, TTFT, tokens, cost and energy."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select

from modelyard.observe.protocol import SeriesPoint, Stats
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

MAX_ROWS = 200_000


def bucket_size(since: datetime, until: datetime) -> timedelta:
    """About 60 buckets over the window, on a round size."""
    span = (until - since).total_seconds()
    for seconds in (10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400):
        if span / seconds <= 90:
            return timedelta(seconds=seconds)
    return timedelta(days=7)


def stats(store: Store, since: datetime, until: datetime, route: str | None = None) -> Stats:
    t = RequestLogRow
    query = (
        select(
            t.at,
            t.version,
            t.status,
            t.latency_ms,
            t.ttft_ms,
            t.prompt_tokens,
            t.completion_tokens,
            t.cost,
            t.energy_wh,
            t.carbon_g,
        )
        .where(t.at >= since, t.at < until)
        .order_by(t.at)
        .limit(MAX_ROWS)
    )
    if route is not None:
        query = query.where(t.route == route)
    with store.session() as session:
        rows = session.execute(query).all()
    step = bucket_size(since, until)
    groups: dict[tuple[datetime, str], list[tuple[object, ...]]] = defaultdict(list)
    for row in rows:
        start = since + step * int((row.at - since) / step)
        groups[(start, row.version or "-")].append(tuple(row))
    points = [_point(start, version, group, step) for (start, version), group in groups.items()]
    points.sort(key=lambda p: (p.at, p.version))
    return Stats(
        route=route,
        since=since,
        until=until,
        bucket_s=int(step.total_seconds()),
        truncated=len(rows) >= MAX_ROWS,
        points=points,
    )


def _point(
    start: datetime, version: str, rows: list[tuple[object, ...]], step: timedelta
) -> SeriesPoint:
    import numpy as np  # not at module level: the server imports this module (issue 8)

    data = np.array([r[2:] for r in rows], dtype=float)  # status .. carbon, NaN for None
    status, latency, ttft = data[:, 0], data[:, 1], data[:, 2]
    ok = status < 400
    ttft_ok = ttft[ok & ~np.isnan(ttft)]
    latency_ok = latency[ok]

    def percentile(values: np.ndarray, q: float) -> float | None:
        return float(np.percentile(values, q)) if values.size else None

    return SeriesPoint(
        at=start,
        version=version,
        requests=len(rows),
        per_second=len(rows) / step.total_seconds(),
        errors=int(np.sum(status >= 500)),
        client_errors=int(np.sum((status >= 400) & (status < 500))),
        latency_p50_ms=percentile(latency_ok, 50),
        latency_p95_ms=percentile(latency_ok, 95),
        ttft_p50_ms=percentile(ttft_ok, 50),
        ttft_p95_ms=percentile(ttft_ok, 95),
        prompt_tokens=int(np.nansum(data[:, 3])),
        completion_tokens=int(np.nansum(data[:, 4])),
        cost=float(np.nansum(data[:, 5])),
        energy_wh=float(np.nansum(data[:, 6])),
        carbon_g=float(np.nansum(data[:, 7])),
    )
