"""Drift reports from the request log: features of a reference and a current window per
route, compared in the background on a schedule, stored, and shown.

Features: prompt tokens, output tokens, latency (numeric), the prompt's language (language
mix, categorical; by script when a window holds rows logged before languages were
identified), and the prompt text itself (domain classifier) when content is stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from modelyard.engines import EngineError
from modelyard.errors import ModelyardError
from modelyard.observe.language import comparable, prompt_text
from modelyard.observe.protocol import DriftReportOut, DriftRun
from modelyard.store import Store
from modelyard.store.lease import Leader
from modelyard.store.tables import DriftReportRow, RequestLogRow, utcnow

if TYPE_CHECKING:
    from modelyard.observe.drift import ColumnKind

log = logging.getLogger(__name__)
KINDS: Mapping[str, ColumnKind] = MappingProxyType(
    {
        "prompt_tokens": "numeric",
        "completion_tokens": "numeric",
        "latency_ms": "numeric",
        "language": "categorical",
        "prompt": "text",
    }
)
MIN_ROWS = 30
EMBED_SAMPLE = 300  # prompts embedded per window
Embedder = Callable[[list[str]], Awaitable[list[list[float]]]]


class NotEnoughData(ModelyardError, ValueError):
    status = 400
    code = "not_enough_data"


# What an embedder may raise: the model is not routable or not an embedding model
# (LookupError, ValueError), or its engine fails.
EMBEDDING_FAILURES = (LookupError, ValueError, EngineError)


@dataclass(frozen=True)
class Windows:
    reference_from: datetime
    reference_to: datetime
    current_from: datetime
    current_to: datetime

    @classmethod
    def ending(cls, now: datetime, current: timedelta, reference: timedelta) -> Windows:
        return cls(now - current - reference, now - current, now - current, now)


def window_features(
    store: Store,
    route: str,
    since: datetime,
    until: datetime,
    open_content: Callable[[bytes], bytes],
    max_rows: int,
) -> dict[str, list[Any]]:
    """The newest ``max_rows`` successful requests of ``route`` in [since, until)."""
    t = RequestLogRow
    query = (
        select(t.prompt_tokens, t.completion_tokens, t.latency_ms, t.language, t.content)
        .where(t.route == route, t.at >= since, t.at < until, t.status < 400)
        .where(t.variant.is_distinct_from("shadow"))
        .order_by(t.at.desc())
        .limit(max_rows)
    )
    with store.session() as session:
        rows = session.execute(query).all()
    features: dict[str, list[Any]] = {name: [] for name in KINDS}
    for prompt_tokens, completion_tokens, latency, language, blob in rows:
        features["prompt_tokens"].append(prompt_tokens)
        features["completion_tokens"].append(completion_tokens)
        features["latency_ms"].append(latency)
        features["language"].append(language or "none")
        text = None
        if blob is not None:
            try:
                text = prompt_text(json.loads(open_content(blob))) or None
            except ValueError:
                text = None
        features["prompt"].append(text)
    return features


def windows_of(
    store: Store,
    route: str,
    windows: Windows,
    open_content: Callable[[bytes], bytes],
    max_rows: int = 5000,
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Both windows' features, or NotEnoughData."""
    reference = window_features(
        store, route, windows.reference_from, windows.reference_to, open_content, max_rows
    )
    current = window_features(
        store, route, windows.current_from, windows.current_to, open_content, max_rows
    )
    sizes = (len(reference["latency_ms"]), len(current["latency_ms"]))
    if min(sizes) < MIN_ROWS:
        raise NotEnoughData(
            f"route '{route}' has {sizes[0]} reference and {sizes[1]} current requests; "
            f"a drift report needs {MIN_ROWS} in each"
        )
    reference["language"], current["language"] = comparable(
        reference["language"], current["language"]
    )
    return reference, current


def texts_of(features: dict[str, list[Any]]) -> list[str]:
    return [text for text in features["prompt"] if text is not None]


def stored_report(
    store: Store,
    route: str,
    windows: Windows,
    reference: dict[str, list[Any]],
    current: dict[str, list[Any]],
    embeddings: tuple[list[list[float]], list[list[float]]] | None = None,
) -> DriftReportOut:
    """Compare the windows (CPU work: on a worker thread), store the report, return it."""
    # Imported here: the drift statistics need numpy, scipy and scikit-learn, which a
    # server that never writes a report should not load (issue 8).
    from modelyard.observe.drift import drift_report, embedding_drift

    reference, current = dict(reference), dict(current)
    kinds = dict(KINDS)
    if min(len(texts_of(reference)), len(texts_of(current))) < MIN_ROWS:
        # Content not stored (or purged): no text drift.
        del reference["prompt"], current["prompt"], kinds["prompt"]
    report = drift_report(reference, current, kinds)
    if embeddings is not None:
        report = report.with_column(embedding_drift("prompt_embedding", *embeddings))
    row = DriftReportRow(
        at=utcnow(),
        route=route,
        reference_from=windows.reference_from,
        reference_to=windows.reference_to,
        current_from=windows.current_from,
        current_to=windows.current_to,
        drifted=report.drifted,
        share_drifted=report.share_drifted,
        report=report.as_dict(),
    )
    with store.session() as session:
        session.add(row)
        session.flush()
        return report_out(row)


async def run_drift(
    store: Store,
    route: str,
    windows: Windows,
    open_content: Callable[[bytes], bytes],
    embed: Embedder | None = None,
) -> DriftReportOut:
    """One route's report: features read and compared on worker threads; prompt
    embeddings (a sample of each window) from ``embed`` when given."""
    reference, current = await asyncio.to_thread(windows_of, store, route, windows, open_content)
    embeddings = None
    texts = texts_of(reference)[:EMBED_SAMPLE], texts_of(current)[:EMBED_SAMPLE]
    if embed is not None and min(len(texts[0]), len(texts[1])) >= MIN_ROWS:
        try:
            embeddings = (await embed(texts[0]), await embed(texts[1]))
        except EMBEDDING_FAILURES as error:
            log.warning("drift: no prompt embeddings for %s: %s", route, error)
    return await asyncio.to_thread(
        stored_report, store, route, windows, reference, current, embeddings
    )


def active_routes(store: Store, since: datetime) -> list[str]:
    with store.session() as session:
        rows = session.execute(
            select(RequestLogRow.route, func.count())
            .where(RequestLogRow.at >= since, RequestLogRow.status < 400)
            .group_by(RequestLogRow.route)
        ).all()
    return sorted(route for route, count in rows if count >= MIN_ROWS)


def list_reports(store: Store, route: str | None = None, limit: int = 100) -> list[DriftReportOut]:
    query = select(DriftReportRow).order_by(DriftReportRow.id.desc()).limit(min(limit, 1000))
    if route is not None:
        query = query.where(DriftReportRow.route == route)
    with store.session() as session:
        return [report_out(row) for row in session.scalars(query)]


def get_report(store: Store, report_id: int) -> DriftReportOut:
    with store.session() as session:
        row = session.get(DriftReportRow, report_id)
        if row is None:
            raise DriftReportNotFound(report_id)
        return report_out(row)


class DriftReportNotFound(ModelyardError, LookupError):
    status = 404
    code = "not_found"

    def __init__(self, report_id: int) -> None:
        super().__init__(f"no drift report {report_id}")


def report_out(row: DriftReportRow) -> DriftReportOut:
    return DriftReportOut(
        id=row.id,
        at=row.at,
        route=row.route,
        reference_from=row.reference_from,
        reference_to=row.reference_to,
        current_from=row.current_from,
        current_to=row.current_to,
        drifted=row.drifted,
        share_drifted=row.share_drifted,
        report=row.report,
    )


class DriftScheduler:
    """Computes a report for every route with enough traffic, every ``interval_s``."""

    def __init__(
        self,
        store: Store,
        open_content: Callable[[bytes], bytes],
        run: DriftRun,
        embed: Embedder | None = None,
    ) -> None:
        self._store = store
        self._open = open_content
        self._run = run
        self._embed = embed

    def windows(self, now: datetime) -> Windows:
        return Windows.ending(
            now, timedelta(hours=self._run.current_hours), timedelta(days=self._run.reference_days)
        )

    async def run_once(self, now: datetime | None = None) -> list[DriftReportOut]:
        windows = self.windows(now or utcnow())
        routes = await asyncio.to_thread(active_routes, self._store, windows.reference_from)
        done = []
        for route in routes:
            try:
                done.append(await run_drift(self._store, route, windows, self._open, self._embed))
            except NotEnoughData as reason:
                log.info("drift: %s", reason)
        return done

    async def run(self, interval_s: float, leader: Leader | None = None) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                if leader is None or await leader():
                    await self.run_once()
            except SQLAlchemyError as error:
                log.warning("drift reports failed this round: %s", error)
