"""Distilling a labelled dataset version into a student: the texts embedded through the
serving path, a linear head trained on the train split, scored on the hold-out, written
as a ``classifier`` artifact and registered as a version whose lineage names the dataset
version, the teacher, the encoder and the hyper-parameters."""

from __future__ import annotations

import asyncio
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select

from modelyard.errors import ModelyardError
from modelyard.evaluate.datasets import DatasetOut, DatasetService
from modelyard.improve.distil.errors import DistillationNotFound, InvalidDistillation
from modelyard.improve.distil.labelling import dataset_reference
from modelyard.improve.distil.prompts import input_field_of
from modelyard.improve.distil.protocol import (
    DistillationOut,
    DistilRequest,
    DistilStatus,
    Stage,
)
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate, version_name
from modelyard.store import Store
from modelyard.store.tables import DistillationRow, utcnow

if TYPE_CHECKING:
    import httpx
    import numpy as np
    from numpy.typing import NDArray

    from modelyard.engines.classifier.artifact import EncoderRef, LinearHead
    from modelyard.improve.distil.training import Partition

ENCODER_KIND = "sentence-transformers"
Item = dict[str, Any]


class Distillations:
    """Distillations in the store: what was asked, how far it got, what it made."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, request: DistilRequest, dataset: DatasetOut, actor: str) -> int:
        with self._store.session() as session:
            row = DistillationRow(
                model=request.model,
                dataset=dataset.name,
                dataset_version=dataset.version,
                request=request.model_dump(mode="json"),
                status="running",
                stage="queued",
                metrics={},
                lineage={},
                created_by=actor,
            )
            session.add(row)
            session.flush()
            return row.id

    def update(self, distillation_id: int, **fields: Any) -> DistillationOut:
        """Set ``fields`` (stage, status, results); an end status stamps ``finished_at``."""
        with self._store.session() as session:
            row = _row(session, distillation_id)
            for name, value in fields.items():
                setattr(row, name, value)
            if fields.get("status") in ("done", "failed"):
                row.finished_at = utcnow()
            session.flush()
            return distillation_out(row)

    def stopped(self, distillation_id: int, message: str) -> None:
        """Mark a distillation that was still running as failed (a step on a worker thread
        may have finished it meanwhile: then it stays done)."""
        with self._store.session() as session:
            row = _row(session, distillation_id)
            if row.status == "running":
                row.status, row.stage, row.message = "failed", "failed", message
                row.finished_at = utcnow()

    def get(self, distillation_id: int) -> DistillationOut:
        with self._store.session() as session:
            return distillation_out(_row(session, distillation_id))

    def list_distillations(
        self, model: str | None = None, limit: int = 100
    ) -> list[DistillationOut]:
        query = select(DistillationRow).order_by(DistillationRow.id.desc()).limit(limit)
        if model is not None:
            query = query.where(DistillationRow.model == model)
        with self._store.session() as session:
            return [distillation_out(row) for row in session.scalars(query)]


def _row(session: Any, distillation_id: int) -> DistillationRow:
    row = session.get(DistillationRow, distillation_id)
    if row is None:
        raise DistillationNotFound(distillation_id)
    return cast(DistillationRow, row)


def distillation_out(row: DistillationRow) -> DistillationOut:
    return DistillationOut(
        id=row.id,
        model=row.model,
        version=row.version,
        dataset=version_name(row.dataset, row.dataset_version),
        status=cast(DistilStatus, row.status),
        stage=cast(Stage, row.stage),
        request=DistilRequest.model_validate(row.request),
        metrics=dict(row.metrics),
        lineage=dict(row.lineage),
        artifact_uri=row.artifact_uri,
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
        finished_at=row.finished_at,
    )


def start_distillation(store: Store, request: DistilRequest, actor: str) -> DistillationOut:
    """A new distillation of ``request``, once its dataset and fields are found."""
    datasets = DatasetService(store)
    dataset = dataset_reference(datasets, request.dataset)
    first = datasets.items(dataset.name, dataset.version, 0, 1)
    input_field_of(first[0], request.input_field)
    if request.label_field not in first[0]:
        raise InvalidDistillation(
            f"the items of {version_name(dataset.name, dataset.version)} have no "
            f"'{request.label_field}' (label them with a teacher first: POST /api/label)",
            param="label_field",
        )
    records = Distillations(store)
    return records.get(records.create(request, dataset, actor))


async def distil(
    client: httpx.AsyncClient, store: Store, home: Path, distillation_id: int
) -> DistillationOut:
    """Run a distillation to its end; a failure is recorded (``failed`` and why), and the
    distillation returned either way."""
    import httpx

    records = Distillations(store)
    try:
        return await _distil(client, store, home, distillation_id)
    except asyncio.CancelledError:  # the server stops: nothing is left half done
        message = "stopped before it finished (the server or the CLI stopped); start it again"
        await asyncio.shield(asyncio.to_thread(records.stopped, distillation_id, message))
        raise
    except (ModelyardError, ValueError, OSError, httpx.HTTPError) as error:
        message = f"{type(error).__name__}: {error}" if not str(error) else str(error)
        return await asyncio.to_thread(
            records.update, distillation_id, status="failed", stage="failed", message=message
        )


async def _distil(
    client: httpx.AsyncClient, store: Store, home: Path, distillation_id: int
) -> DistillationOut:
    from modelyard.improve.distil.gateway import embed_texts

    records = Distillations(store)
    out = await asyncio.to_thread(records.update, distillation_id, stage="reading")
    request = out.request
    data = await asyncio.to_thread(_read, store, out)
    await asyncio.to_thread(records.update, distillation_id, stage="embedding")
    started = time.perf_counter()
    used = data.part.train + data.part.holdout
    vectors, served_by = await embed_texts(
        client, request.embedding_model, [data.texts[i] for i in used]
    )
    embedding_s = time.perf_counter() - started
    encoder = await asyncio.to_thread(_encoder, store, served_by)
    await asyncio.to_thread(records.update, distillation_id, stage="training")
    head, metrics = await asyncio.to_thread(_train, data, vectors, request)
    metrics["embedding_s"] = round(embedding_s, 3)
    await asyncio.to_thread(records.update, distillation_id, stage="registering")
    lineage = _lineage(out, data, encoder, metrics)
    return await asyncio.to_thread(_register, store, home, out, head, encoder, lineage)


class _Data:
    """The dataset version's texts, labels and gold labels, and its partition."""

    def __init__(self, dataset: DatasetOut, items: list[Item], request: DistilRequest) -> None:
        from modelyard.improve.distil.training import partition

        field = input_field_of(items[0], request.input_field)
        self.dataset = dataset
        self.input_field = field
        self.texts = [str(item.get(field) or "") for item in items]
        self.labels = [_text(item.get(request.label_field)) for item in items]
        self.gold = [
            _text(item.get(request.gold_field)) if request.gold_field else None for item in items
        ]
        splits = [_text(item.get("split")) for item in items]
        self.part: Partition = partition(self.labels, splits, request.holdout, request.seed)


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _read(store: Store, out: DistillationOut) -> _Data:
    datasets = DatasetService(store)
    name, _, number = out.dataset.partition("@")
    dataset = datasets.get(name, int(number))
    data = _Data(dataset, datasets.items(name, dataset.version), out.request)
    if not data.part.train:
        raise InvalidDistillation(
            f"{out.dataset} has no labelled item to train on", param="dataset"
        )
    return data


def _encoder(store: Store, served_by: str) -> EncoderRef:
    """The encoder that embedded the texts, as the registry has it: a classifier serves
    with that very directory."""
    from modelyard.engines.classifier.artifact import encoder_ref

    model, _, number = served_by.rpartition("@")
    version = Registry(store).version(model, int(number))
    if version.engine_kind != ENCODER_KIND:
        raise InvalidDistillation(
            f"{served_by} is a '{version.engine_kind}' version; a student's encoder must be "
            f"a '{ENCODER_KIND}' one",
            param="embedding_model",
        )
    return encoder_ref(Path(version.artifact_uri), served_as=served_by)


def _train(
    data: _Data, vectors: NDArray[np.float32], request: DistilRequest
) -> tuple[LinearHead, dict[str, Any]]:
    from modelyard.improve.distil.training import fit_head, scores

    part = data.part
    train_x, holdout_x = vectors[: len(part.train)], vectors[len(part.train) :]
    started = time.perf_counter()
    head, converged = fit_head(
        train_x,
        [str(data.labels[i]) for i in part.train],
        c=request.c,
        max_iter=request.max_iter,
        class_weight=request.class_weight,
        seed=request.seed,
    )
    training_s = time.perf_counter() - started
    holdout = scores(head, holdout_x, [str(data.labels[i]) for i in part.holdout])
    train = scores(head, train_x, [str(data.labels[i]) for i in part.train])
    metrics: dict[str, Any] = {
        "holdout_accuracy": holdout["accuracy"],
        "holdout_macro_f1": holdout["macro_f1"],
        "holdout_items": holdout["items"],
        "train_accuracy": train["accuracy"],
        "train_items": train["items"],
        "labels": len(head.labels),
        "converged": converged,
        "training_s": round(training_s, 3),
    }
    if request.gold_field:
        gold = [(i, data.gold[i]) for i in part.holdout]
        known = [k for k, (_, g) in enumerate(gold) if g is not None]
        scored = scores(head, holdout_x[known], [str(gold[k][1]) for k in known])
        metrics.update(gold_accuracy=scored["accuracy"], gold_macro_f1=scored["macro_f1"])
    return head, metrics


def _lineage(
    out: DistillationOut, data: _Data, encoder: EncoderRef, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Where the student comes from: stored with the distillation and in the artifact."""
    source = data.dataset.source
    labelled = source.get("kind") == "labelled"
    request = out.request
    return {
        "distillation": out.id,
        "dataset": {"name": out.dataset, "sha256": data.dataset.sha256, "kind": source.get("kind")},
        "teacher": source.get("teacher") if labelled else None,
        "label_run": source.get("label_run") if labelled else None,
        "labelled_from": source.get("from") if labelled else None,
        "encoder": encoder.model_dump(mode="json"),
        "head": "multinomial logistic regression, scikit-learn " + metadata.version("scikit-learn"),
        "hyperparameters": {
            "c": request.c,
            "max_iter": request.max_iter,
            "class_weight": request.class_weight,
            "seed": request.seed,
        },
        "partition": {
            "how": data.part.how,
            "train": len(data.part.train),
            "holdout": len(data.part.holdout),
        },
        "fields": {
            "input": data.input_field,
            "label": request.label_field,
            "gold": request.gold_field,
        },
        "metrics": metrics,
    }


def _register(
    store: Store,
    home: Path,
    out: DistillationOut,
    head: LinearHead,
    encoder: EncoderRef,
    lineage: dict[str, Any],
) -> DistillationOut:
    """Write the artifact under ``home`` and register it as the next version."""
    from modelyard.engines.classifier.artifact import ClassifierArtifact, write_artifact

    directory = home / "artifacts" / "classifiers" / f"{out.model}-d{out.id}"
    write_artifact(directory, ClassifierArtifact(head, encoder, lineage))
    teacher = lineage["teacher"]["route"] if lineage["teacher"] else "the dataset's labels"
    accuracy = lineage["metrics"]["holdout_accuracy"]
    notes = (
        f"distilled from {out.dataset} (teacher: {teacher}); hold-out accuracy "
        f"{'n/a' if accuracy is None else f'{accuracy:.3f}'}; distillation {out.id}"
        + (f"; {out.request.notes}" if out.request.notes else "")
    )
    version = Registry(store).add_version(
        out.model,
        VersionCreate(
            engine_kind="classifier", artifact_uri=str(directory), notes=notes, task="chat"
        ),
        actor=out.created_by,
    )
    return Distillations(store).update(
        out.id,
        status="done",
        stage="done",
        version=version.number,
        artifact_uri=version.artifact_uri,
        metrics=lineage["metrics"],
        lineage=lineage,
    )
