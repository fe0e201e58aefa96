"""Making an export: its manifest measured by streaming the version once (nothing kept but
the counts and the hash), written to a file by the CLI in the same single pass, and
recorded; reading a recorded export's bytes again, which are the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelyard.evaluate.datasets import DatasetOut, DatasetService
from modelyard.improve.export.errors import InvalidExport
from modelyard.improve.export.protocol import ExportFormat, ExportOut, ExportRequest
from modelyard.improve.export.records import get_export, record_export
from modelyard.improve.export.stream import FRAMINGS, Tally, export_chunks
from modelyard.registry.protocol import version_name
from modelyard.store import Store


def dataset_of(store: Store, reference: str) -> DatasetOut:
    """``name`` (its latest version) or ``name@version`` (DatasetNotFound if none)."""
    name, at, number = reference.rpartition("@")
    if not at:
        return DatasetService(store).get(reference)
    return DatasetService(store).get(name, int(number))


def measure(store: Store, dataset: DatasetOut, format: ExportFormat, split: str | None) -> Tally:
    """What exporting ``dataset`` would write, counted and hashed (the bytes are not kept)."""
    tally = Tally()
    for _ in export_chunks(store, dataset, format, split, tally):
        pass
    return tally


def manifest(
    dataset: DatasetOut, format: ExportFormat, split: str | None, tally: Tally
) -> dict[str, Any]:
    """The manifest of an export, as its record keeps it; an export that would hold no
    conversation is refused."""
    reference = version_name(dataset.name, dataset.version)
    counts = tally.counts()
    if not counts.written:
        reasons = ", ".join(f"{n} {reason}" for reason, n in counts.skipped_by.items())
        raise InvalidExport(
            f"nothing to export from {reference}"
            + (f" split '{split}'" if split else "")
            + f": {counts.items} items, {counts.other_splits} of other splits, "
            + f"{counts.skipped} that cannot be converted{f' ({reasons})' if reasons else ''}",
            param="split" if split and counts.other_splits == counts.items else "dataset",
        )
    framing = FRAMINGS[format]
    part = f"-{split}" if split else ""
    return {
        "dataset": reference,
        "dataset_sha256": dataset.sha256,
        "format": format,
        "split": split,
        "counts": counts.model_dump(),
        "skipped_examples": [example.model_dump() for example in tally.examples],
        "sha256": tally.digest.hexdigest(),
        "bytes": tally.size,
        "media_type": framing.media_type,
        "filename": f"{dataset.name}-{dataset.version}{part}-{format}.{framing.suffix}",
    }


def create_export(store: Store, request: ExportRequest, actor: str) -> ExportOut:
    """Measure and record an export; its bytes are read with ``export_bytes``."""
    dataset = dataset_of(store, request.dataset)
    tally = measure(store, dataset, request.format, request.split)
    return record_export(store, manifest(dataset, request.format, request.split, tally), actor)


def write_export(store: Store, request: ExportRequest, path: Path, actor: str) -> ExportOut:
    """Write the export to ``path`` in one pass and record it (a refused or failed export
    leaves no file)."""
    dataset = dataset_of(store, request.dataset)
    partial = path.with_name(path.name + ".partial")
    tally = Tally()
    try:
        with partial.open("wb") as out:
            for chunk in export_chunks(store, dataset, request.format, request.split, tally):
                out.write(chunk)
        fields = manifest(dataset, request.format, request.split, tally)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return record_export(store, fields, actor)


def export_bytes(store: Store, export_id: int) -> tuple[ExportOut, Iterator[bytes]]:
    """A recorded export and its bytes, streamed from its dataset version (the version is
    found before the first byte: DatasetNotFound is raised here)."""
    out = get_export(store, export_id)
    dataset = dataset_of(store, out.dataset)
    return out, export_chunks(store, dataset, out.format, out.split, Tally())
