"""Curated versions: which dataset versions a curation built, and each one's report (kept
in the version's provenance, so it lives exactly as long as the version)."""

from __future__ import annotations

from sqlalchemy import select

from modelyard.errors import ModelyardError
from modelyard.evaluate.datasets import DatasetOut, DatasetService, dataset_out
from modelyard.improve.protocol import CurateOut, CurateRequest, CurationReport
from modelyard.store import Store
from modelyard.store.tables import DatasetRow

KIND = "curated"


class NotCurated(ModelyardError, LookupError):
    status = 404
    code = "not_curated"

    def __init__(self, reference: str, kind: str | None) -> None:
        super().__init__(
            f"dataset {reference} was not curated (its source is {kind or 'unknown'}); "
            "`modelyard datasets show` has its provenance"
        )


def curated_versions(store: Store, limit: int = 100) -> list[DatasetOut]:
    """Versions built by a curation, newest first."""
    query = (
        select(DatasetRow)
        .where(DatasetRow.source["kind"].as_string() == KIND)
        .order_by(DatasetRow.created_at.desc(), DatasetRow.id.desc())
        .limit(limit)
    )
    with store.session() as session:
        return [dataset_out(row) for row in session.scalars(query)]


def curation_of(store: Store, name: str, version: int) -> CurateOut:
    """A curated version with the request that built it and its report."""
    dataset = DatasetService(store).get(name, version)
    source = dataset.source
    if source.get("kind") != KIND:
        raise NotCurated(f"'{name}' version {version}", source.get("kind"))
    return CurateOut(
        dataset=dataset,
        request=CurateRequest.model_validate(source["request"]),
        report=CurationReport.model_validate(source["report"]),
    )
