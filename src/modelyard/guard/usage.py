"""Usage metering: totals per key, route and UTC day, read from the request log."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import case, func, select

from modelyard.guard.ledger import Spend
from modelyard.guard.protocol import UsageRow
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

CSV_COLUMNS = tuple(UsageRow.model_fields)
NOTHING = Spend(0, 0.0)


def usage(
    store: Store,
    *,
    key_id: str | None = None,
    route: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[UsageRow]:
    """Requests, tokens and cost per (key, route, day), oldest day first."""
    t = RequestLogRow
    query = select(
        t.key_id,
        t.route,
        t.day,
        func.count(),
        func.sum(case((t.status >= 400, 1), else_=0)),
        func.sum(t.prompt_tokens),
        func.sum(t.completion_tokens),
        func.sum(t.cost),
    ).group_by(t.key_id, t.route, t.day)
    # Shadow copies are the operator's experiment, not the client's usage.
    query = query.where(t.variant.is_distinct_from("shadow"))
    if key_id is not None:
        query = query.where(t.key_id == key_id)
    if route is not None:
        query = query.where(t.route == route)
    if since is not None:
        query = query.where(t.day >= since.isoformat())
    if until is not None:
        query = query.where(t.day <= until.isoformat())
    query = query.order_by(t.day, t.key_id, t.route)
    with store.session() as session:
        return [
            UsageRow(
                key_id=k,
                route=r,
                day=d,
                requests=int(n),
                errors=int(e or 0),
                prompt_tokens=int(p or 0),
                completion_tokens=int(c or 0),
                total_tokens=int((p or 0) + (c or 0)),
                cost=float(cost or 0.0),
            )
            for k, r, d, n, e, p, c, cost in session.execute(query)
        ]


def as_csv(rows: Sequence[UsageRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, column) for column in CSV_COLUMNS])
    return out.getvalue()


def spend_since(
    store: Store, now: datetime | None = None
) -> tuple[dict[str, Spend], dict[str, Spend]]:
    """Tokens and cost per key today and this month (UTC), to seed in-memory budgets."""
    today = (now or datetime.now(UTC)).date()
    month_start = today.replace(day=1)
    day_totals: dict[str, Spend] = {}
    month_totals: dict[str, Spend] = {}
    for row in usage(store, since=month_start, until=today):
        spend = Spend(row.total_tokens, row.cost)
        month_totals[row.key_id] = month_totals.get(row.key_id, NOTHING) + spend
        if row.day == today.isoformat():
            day_totals[row.key_id] = day_totals.get(row.key_id, NOTHING) + spend
    return day_totals, month_totals
