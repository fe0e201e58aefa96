"""Named datasets with immutable, content-hashed versions: from files or from the request log."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Select, Table, func, select
from sqlalchemy.orm import Session

from modelyard.errors import ModelyardError
from modelyard.evaluate.tasks.loading import load_items
from modelyard.evaluate.tasks.spec import DatasetSource
from modelyard.observe.feedback import feedback_out
from modelyard.observe.language import prompt_text
from modelyard.registry.protocol import version_name
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import DatasetItemRow, DatasetRow, FeedbackRow, RequestLogRow

Item = dict[str, Any]
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
INSERT_ITEMS = cast(Table, DatasetItemRow.__table__).insert()
WRITE_BATCH = 1000  # items per INSERT when a version is written


class DatasetOut(BaseModel):
    name: str
    version: int
    sha256: str
    source: dict[str, Any]
    item_count: int
    created_at: datetime
    created_by: str


class DatasetNotFound(ModelyardError, LookupError):
    status = 404
    code = "dataset_not_found"

    def __init__(self, name: str, version: int | None = None) -> None:
        which = f"'{name}'" if version is None else f"'{name}' version {version}"
        super().__init__(f"no dataset {which} (see `modelyard datasets list`)")


class InvalidDataset(ModelyardError, ValueError):
    """A dataset that cannot be registered, with what to change."""

    status = 400
    code = "invalid_dataset"


class EmptyDataset(InvalidDataset):
    """Nothing to put in a dataset (no items, or no logged request matched)."""


@dataclass(frozen=True)
class StoredItem:
    """One item of a version on its way to the store: its data, the request it came from,
    and for a curated item its split and the fingerprint of its input."""

    data: Item
    request_id: str | None = None
    split: str | None = None
    fingerprint: str | None = None


class _Unchanged(Exception):
    """The streamed items hash like the latest version: that version stands."""

    def __init__(self, latest: DatasetOut) -> None:
        super().__init__(latest.name)
        self.latest = latest


class DatasetService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def register_items(
        self,
        name: str,
        items: list[Item],
        source: dict[str, Any],
        actor: str,
        request_ids: list[str | None] | None = None,
    ) -> DatasetOut:
        """A new version of ``name`` holding ``items``, or the latest one if it holds the same."""
        if request_ids is not None and len(request_ids) != len(items):
            raise InvalidDataset("request_ids must have one entry per item")
        ids = request_ids or [None] * len(items)
        stored = (StoredItem(item, ids[i]) for i, item in enumerate(items))
        return self.register_stream(name, stored, source, actor)

    def register_stream(
        self, name: str, items: Iterable[StoredItem], source: dict[str, Any], actor: str
    ) -> DatasetOut:
        """``register_items`` for items that need not all be in memory: written in batches
        as they come, hashed on the way (the digest ``dataset_digest`` gives), and rolled
        back when they hash like the latest version."""
        if not NAME.fullmatch(name):
            raise InvalidDataset(
                f"invalid dataset name '{name}': use 1 to 128 letters, digits, '.', '_' or '-'"
            )
        try:
            with self._store.session() as session:
                return _write_version(session, name, items, source, actor)
        except _Unchanged as unchanged:
            return unchanged.latest

    def training_overlap(self, fingerprints: Collection[str]) -> dict[str, set[str]]:
        """Which of ``fingerprints`` the train split of a curated version holds, by version
        (``name@version``)."""
        wanted = list(fingerprints)
        found: dict[str, set[str]] = {}
        with self._store.session() as session:
            for start in range(0, len(wanted), WRITE_BATCH):
                query = (
                    select(DatasetRow.name, DatasetRow.version, DatasetItemRow.fingerprint)
                    .join(DatasetRow, DatasetRow.id == DatasetItemRow.dataset_id)
                    .where(
                        DatasetItemRow.fingerprint.in_(wanted[start : start + WRITE_BATCH]),
                        DatasetItemRow.split == "train",
                    )
                )
                for name, version, print_ in session.execute(query):
                    if print_ is not None:
                        found.setdefault(version_name(name, version), set()).add(print_)
        return found

    def register_file(
        self,
        name: str,
        path: Path,
        format: str | None = None,
        records: str | None = None,
        columns: list[str] | None = None,
        *,
        actor: str,
    ) -> DatasetOut:
        """A version of ``name`` from a JSONL, CSV, TSV, JSON or SQuAD file (else TaskError)."""
        path = path.expanduser().resolve()
        spec = DatasetSource.model_validate(
            {"path": str(path), "format": format, "records": records, "columns": columns}
        )
        items = load_items(spec, path.parent)
        source = {"kind": "file", **spec.model_dump(exclude_none=True)}
        return self.register_items(name, items, source, actor)

    def from_log(
        self,
        name: str,
        *,
        route: str | None,
        feedback: str | None,
        negative_only: bool,
        since: datetime,
        until: datetime | None,
        limit: int,
        open_content: Callable[[bytes], bytes],
        actor: str,
    ) -> DatasetOut:
        """Successful logged requests (with the named feedback; negative only if asked) as items.

        The newest ``limit`` matching requests are read; those without stored content are
        skipped and counted in the version's source."""
        query = _log_query(route, feedback, negative_only, since, until).limit(limit)
        with self._store.session() as session:
            rows = list(session.scalars(query))[::-1]
            read = _read_logged(session, rows, open_content)
        query_text = {
            "route": route,
            "feedback": feedback,
            "negative_only": negative_only,
            "since": since.isoformat(),
            "until": until.isoformat() if until else None,
            "limit": limit,
        }
        if not read.items:
            raise EmptyDataset(f"no logged request matches {_describe(query_text)}{read.skipped()}")
        source = {
            "kind": "log",
            **query_text,
            "matched": len(rows),
            "skipped_without_content": read.without_content,
            "skipped_unreadable": read.unreadable,
        }
        return self.register_items(name, read.items, source, actor, read.ids)

    def list_datasets(self) -> list[DatasetOut]:
        """The latest version of every dataset, by name."""
        newest = (
            select(DatasetRow.name, func.max(DatasetRow.version).label("version"))
            .group_by(DatasetRow.name)
            .subquery()
        )
        query = (
            select(DatasetRow)
            .join(
                newest,
                (DatasetRow.name == newest.c.name) & (DatasetRow.version == newest.c.version),
            )
            .order_by(DatasetRow.name)
        )
        with self._store.session() as session:
            return [dataset_out(row) for row in session.scalars(query)]

    def versions(self, name: str) -> list[DatasetOut]:
        """Every version of ``name``, newest first."""
        query = (
            select(DatasetRow).where(DatasetRow.name == name).order_by(DatasetRow.version.desc())
        )
        with self._store.session() as session:
            found = [dataset_out(row) for row in session.scalars(query)]
        if not found:
            raise DatasetNotFound(name)
        return found

    def get(self, name: str, version: int | None = None) -> DatasetOut:
        """One version of ``name`` (the latest by default)."""
        with self._store.session() as session:
            return dataset_out(_row(session, name, version))

    def latest_items(self, name: str, version: int | None = None) -> list[Item]:
        """Every item of ``name@version`` (the latest version when None)."""
        return self.items(name, self.get(name, version).version)

    def items(
        self, name: str, version: int, offset: int = 0, limit: int | None = None
    ) -> list[Item]:
        with self._store.session() as session:
            dataset_id = _row(session, name, version).id
            query = (
                select(DatasetItemRow.data)
                .where(DatasetItemRow.dataset_id == dataset_id)
                .order_by(DatasetItemRow.item_index)
                .offset(offset)
                .limit(limit)
            )
            return [dict(data) for data in session.scalars(query)]

    def stored_items(
        self, name: str, version: int, offset: int = 0, limit: int | None = None
    ) -> list[StoredItem]:
        """``items`` with what the store keeps beside each (its request id, split and
        fingerprint), as a version derived from this one carries them over."""
        with self._store.session() as session:
            dataset_id = _row(session, name, version).id
            query = (
                select(DatasetItemRow)
                .where(DatasetItemRow.dataset_id == dataset_id)
                .order_by(DatasetItemRow.item_index)
                .offset(offset)
                .limit(limit)
            )
            return [
                StoredItem(dict(row.data), row.request_id, row.split, row.fingerprint)
                for row in session.scalars(query)
            ]

    def export_jsonl(self, name: str, version: int | None = None) -> Iterator[str]:
        """The items of one version, one JSON object per line (DatasetNotFound raised early)."""
        number = self.get(name, version).version
        return (json.dumps(item, ensure_ascii=False) + "\n" for item in self.items(name, number))


def _write_version(
    session: Session, name: str, items: Iterable[StoredItem], source: dict[str, Any], actor: str
) -> DatasetOut:
    """Add the next version of ``name`` with ``items`` (raises _Unchanged when they are the
    latest version's)."""
    latest = _latest(session, name)
    row = DatasetRow(
        name=name,
        version=(latest.version + 1) if latest is not None else 1,
        sha256="",
        source=source,
        item_count=0,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    digest = hashlib.sha256(b"[")
    batch: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        digest.update((", " if index else "").encode() + _canonical(item.data))
        batch.append(
            {
                "dataset_id": row.id,
                "item_index": index,
                "data": item.data,
                "request_id": item.request_id,
                "split": item.split,
                "fingerprint": item.fingerprint,
            }
        )
        row.item_count = index + 1
        if len(batch) >= WRITE_BATCH:
            session.execute(INSERT_ITEMS, batch)
            batch = []
    if batch:
        session.execute(INSERT_ITEMS, batch)
    if not row.item_count:
        raise EmptyDataset(f"dataset '{name}' would have no items")
    digest.update(b"]")
    row.sha256 = digest.hexdigest()
    if latest is not None and latest.sha256 == row.sha256:
        raise _Unchanged(dataset_out(latest))
    append_audit(
        session,
        actor=actor,
        action="dataset.create",
        target=version_name(name, row.version),
        after={"sha256": row.sha256, "item_count": row.item_count, "source": source},
    )
    session.flush()
    return dataset_out(row)


def _canonical(item: Item) -> bytes:
    """One item as ``dataset_digest`` writes it inside its list."""
    return json.dumps(item, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def _latest(session: Session, name: str) -> DatasetRow | None:
    query = (
        select(DatasetRow).where(DatasetRow.name == name).order_by(DatasetRow.version.desc())
    ).limit(1)
    return session.scalars(query).first()


def _row(session: Session, name: str, version: int | None) -> DatasetRow:
    if version is None:
        row = _latest(session, name)
    else:
        row = session.scalars(
            select(DatasetRow).where(DatasetRow.name == name, DatasetRow.version == version)
        ).first()
    if row is None:
        raise DatasetNotFound(name, version)
    return row


def _log_query(
    route: str | None,
    feedback: str | None,
    negative_only: bool,
    since: datetime,
    until: datetime | None,
) -> Select[RequestLogRow]:
    """Successful logged requests matching the filters, newest first."""
    query = select(RequestLogRow).where(RequestLogRow.status == 200, RequestLogRow.at >= since)
    if until is not None:
        query = query.where(RequestLogRow.at < until)
    if route is not None:
        query = query.where(RequestLogRow.route == route)
    judged = judged_requests(feedback, negative_only)
    if judged is not None:
        query = query.where(RequestLogRow.id.in_(judged))
    return query.order_by(RequestLogRow.at.desc(), RequestLogRow.id.desc())


@dataclass
class _Logged:
    """The items read from logged requests, and how many were skipped and why."""

    items: list[Item] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)
    without_content: int = 0
    unreadable: int = 0

    def skipped(self) -> str:
        """The skipped rows, as the message of an empty dataset mentions them."""
        return (
            f" ({self.without_content} without stored content)" if self.without_content else ""
        ) + (
            f" ({self.unreadable} whose content this key ring cannot open)"
            if self.unreadable
            else ""
        )


def _read_logged(
    session: Session, rows: list[RequestLogRow], open_content: Callable[[bytes], bytes]
) -> _Logged:
    """One item per row whose stored content opens, with the feedback it was given."""
    read = _Logged()
    given = feedback_by_request(session, [row.id for row in rows])
    for row in rows:
        if row.content is None:
            read.without_content += 1
            continue
        try:
            content = json.loads(open_content(row.content))
        except ValueError:
            read.unreadable += 1
            continue
        read.items.append(log_item(row, content, given.get(row.id, [])))
        read.ids.append(row.id)
    return read


def judged_requests(feedback: str | None, negative_only: bool) -> Any:
    """Ids of requests with the named feedback (any name if None); None when no filter applies."""
    if feedback is None and not negative_only:
        return None
    query = select(FeedbackRow.request_id)
    if feedback is not None:
        query = query.where(FeedbackRow.name == feedback)
    if negative_only:
        # Negative: a thumbs-down (boolean false, stored as 0) or a score of 0.
        query = query.where(FeedbackRow.kind.in_(("boolean", "number")), FeedbackRow.number == 0)
    return query


def feedback_by_request(session: Session, request_ids: list[str]) -> dict[str, list[Item]]:
    given: dict[str, list[Item]] = {}
    if not request_ids:
        return given
    query = (
        select(FeedbackRow).where(FeedbackRow.request_id.in_(request_ids)).order_by(FeedbackRow.id)
    )
    for row in session.scalars(query):
        out = feedback_out(row)
        given.setdefault(row.request_id, []).append(
            {"name": out.name, "value": out.value, "comment": out.comment}
        )
    return given


def log_item(row: RequestLogRow, content: dict[str, Any], feedback: list[Item]) -> Item:
    asked: Item = {key: content[key] for key in ("messages", "prompt") if key in content}
    return {
        "request_id": row.id,
        "route": row.route,
        "version": row.version,
        **asked,
        "input": prompt_text(content),
        "output": content.get("response"),
        "corrected": None,
        "feedback": feedback,
    }


def _describe(query: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in query.items() if value is not None)


def dataset_out(row: DatasetRow) -> DatasetOut:
    return DatasetOut(
        name=row.name,
        version=row.version,
        sha256=row.sha256,
        source=dict(row.source),
        item_count=row.item_count,
        created_at=row.created_at,
        created_by=row.created_by,
    )
