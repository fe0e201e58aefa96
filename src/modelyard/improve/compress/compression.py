"""A compression, start to end: the parent checked, each variant made and registered as a
version of the same model, every row measured in a child process, then compared with the
parent (paired where the measurement is per text), gated and put on the Pareto front.

Everything that blocks (quantising, the store) runs on a worker thread; measuring runs in a
child process the event loop only awaits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from modelyard.errors import ModelyardError
from modelyard.improve.compress import embedding, gguf
from modelyard.improve.compress.errors import InvalidCompression
from modelyard.improve.compress.protocol import CompressionOut, CompressRequest, VariantOut
from modelyard.improve.compress.records import Compressions
from modelyard.improve.compress.scoring import ClientFactory, compare_scores, eval_task, score_rows
from modelyard.improve.compress.table import gate_verdict, metric_names, pareto_flags
from modelyard.improve.compress.texts import Texts, read_texts
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate, VersionOut
from modelyard.store import Store

KINDS = ("llamacpp", "sentence-transformers")


def start_compression(store: Store, request: CompressRequest, actor: str) -> CompressionOut:
    """A new compression of ``request`` once the parent, the methods, the texts and the
    gate's metrics are checked (InvalidCompression, or the registry's 404)."""
    parent = Registry(store).version(request.model, request.version)
    kind = parent.engine_kind
    if kind == "llamacpp":
        from modelyard.engines.llamacpp.quantise import METHODS, unknown_methods

        unknown = unknown_methods(request.to)
        if unknown:
            raise InvalidCompression(
                f"unknown quantisation type {', '.join(unknown)} for a llamacpp version; "
                f"known: {', '.join(METHODS)}",
                param="to",
            )
        if not Path(parent.artifact_uri.removeprefix("file://")).is_file():
            raise InvalidCompression(
                f"{parent.name}'s GGUF {parent.artifact_uri} is not on this machine",
                param="version",
            )
    elif kind == "sentence-transformers":
        embedding.check(parent, request)
    else:
        raise InvalidCompression(
            f"{parent.name} is a {kind} version; compression makes variants of "
            f"{' and '.join(KINDS)} versions",
            param="version",
        )
    texts = read_texts(store, request.texts) if request.texts is not None else None
    evaluated: set[str] = set()
    if request.eval is not None:
        if kind != "llamacpp":
            raise InvalidCompression(
                "eval runs a chat task: it goes with a llamacpp version (an embedding model's "
                "quality is its agreement and accuracy on texts)",
                param="eval",
            )
        task, _ = eval_task(store, request.eval)
        evaluated = {f"eval_{spec.name}" for spec in task.metrics}
    known = evaluated | metric_names(
        kind, request.streams, texts is not None, texts is not None and texts.labels is not None
    )
    for rule in request.gate:
        if rule.metric not in known:
            raise InvalidCompression(
                f"the gate names {rule.metric!r}, which this compression does not measure "
                f"(it measures: {', '.join(sorted(known))})",
                param="gate",
            )
    return Compressions(store).create(request, kind, actor)


async def compress(
    store: Store,
    home: Path,
    compression_id: int,
    serving: ClientFactory | None = None,
) -> CompressionOut:
    """Run a compression to its end; a failure is recorded (``failed`` and why), and the
    compression returned either way. Variants registered before a failure stay registered
    (their rows say so). ``serving`` opens a client of the serving path for the eval stage
    (opened once the variants are registered, so that it serves them)."""
    records = Compressions(store)
    try:
        return await _compress(store, home, compression_id, serving)
    except asyncio.CancelledError:
        message = "stopped before it finished (the server or the CLI stopped); start it again"
        await asyncio.shield(asyncio.to_thread(records.stopped, compression_id, message))
        raise
    except (ModelyardError, ValueError, OSError, RuntimeError) as error:
        message = str(error) or type(error).__name__
        return await asyncio.to_thread(
            records.update, compression_id, status="failed", stage="failed", message=message
        )


async def _compress(
    store: Store, home: Path, compression_id: int, serving: ClientFactory | None
) -> CompressionOut:
    records = Compressions(store)
    out = await asyncio.to_thread(records.update, compression_id, stage="reading")
    request = out.request
    parent = await asyncio.to_thread(Registry(store).version, request.model, request.version)
    texts = None
    if request.texts is not None:
        texts = await asyncio.to_thread(read_texts, store, request.texts)
    kind = gguf if out.engine_kind == "llamacpp" else embedding
    rows = await _make_variants(store, home, out, parent)
    await asyncio.to_thread(records.update, compression_id, stage="measuring")
    samples: list[Any] = []
    for index, row in enumerate(rows):
        version = parent
        if index > 0:
            version = await asyncio.to_thread(
                Registry(store).version, request.model, int(row.version or 0)
            )
        measured = await kind.measure(version, request, texts)
        samples.append(measured.pop("samples", None))
        rows[index] = row.model_copy(update={"measurements": measured})
        await asyncio.to_thread(records.update, compression_id, rows)
    if request.eval is not None:
        if serving is None:
            raise InvalidCompression("eval needs the serving path, and none was given")
        await asyncio.to_thread(records.update, compression_id, stage="evaluating")
        rows = await _evaluate(store, serving, request, rows, out.created_by)
    await asyncio.to_thread(records.update, compression_id, stage="comparing")
    rows = await asyncio.to_thread(_compare, out.engine_kind, request, rows, samples, texts)
    return await asyncio.to_thread(
        records.update, compression_id, rows, status="done", stage="done"
    )


async def _make_variants(
    store: Store, home: Path, out: CompressionOut, parent: VersionOut
) -> list[VariantOut]:
    """The parent's row, then one per type: each variant made and registered with its
    lineage (the table is saved after each, so a failure leaves what was registered)."""
    records, request = Compressions(store), out.request
    kind = gguf if out.engine_kind == "llamacpp" else embedding
    source = await asyncio.to_thread(kind.source_type, parent)
    rows = [VariantOut(role="parent", version=parent.number, method=source, measurements={})]
    await asyncio.to_thread(records.update, out.id, rows, stage="quantising")
    for method in request.to:
        made = await kind.make(home, parent, method, out.id, request.threads)
        version = await asyncio.to_thread(
            _register, store, parent, made, method, out.id, request.notes, out.created_by
        )
        lineage = {
            "kind": "compress",
            "compression": out.id,
            "parent": {
                "model": parent.model,
                "version": parent.number,
                "artifact_sha256": parent.artifact_sha256,
                "type": source,
            },
            "method": method,
            "requantised": kind.requantised(source),
            **made.facts,
        }
        rows.append(
            VariantOut(
                role="variant",
                version=version.number,
                method=method,
                measurements={},
                lineage=lineage,
            )
        )
        await asyncio.to_thread(records.update, out.id, rows)
    return rows


async def _evaluate(
    store: Store,
    serving: ClientFactory,
    request: CompressRequest,
    rows: list[VariantOut],
    actor: str,
) -> list[VariantOut]:
    """Each row's eval run, its metrics among the measurements, and each variant's paired
    comparison with the parent's run."""
    assert request.eval is not None
    models = [f"{request.model}@{row.version}" for row in rows]
    async with serving() as client:
        scored = await score_rows(client, store, request.eval, models, actor)
    evaluated = []
    for index, (row, result) in enumerate(zip(rows, scored, strict=True)):
        update: dict[str, Any] = {
            "measurements": {**row.measurements, **result.measurements, "eval_run": result.run.id}
        }
        if index > 0:
            paired = await asyncio.to_thread(compare_scores, store, request.eval, scored[0], result)
            update["comparison"] = {**row.comparison, "eval": paired}
        evaluated.append(row.model_copy(update=update))
    return evaluated


def _register(
    store: Store,
    parent: VersionOut,
    made: Any,
    method: str,
    compression_id: int,
    notes: str,
    actor: str,
) -> VersionOut:
    text = f"{method} variant of {parent.name} (compression {compression_id})"
    return Registry(store).add_version(
        parent.model,
        VersionCreate(
            engine_kind=parent.engine_kind,
            artifact_uri=made.uri,
            parameters=made.parameters,
            notes=text + (f"; {notes}" if notes else ""),
        ),
        actor=actor,
    )


def _compare(
    engine_kind: str,
    request: CompressRequest,
    rows: list[VariantOut],
    samples: list[Any],
    texts: Texts | None,
) -> list[VariantOut]:
    """Each variant's paired comparison with the parent, gate verdict and notes; every
    row's place on the front."""
    kind = gguf if engine_kind == "llamacpp" else embedding
    parent = rows[0]
    compared: list[VariantOut] = []
    for row, sample in zip(rows[1:], samples[1:], strict=True):
        comparison, added, parent_added = kind.compare(samples[0], sample, texts)
        parent = parent.model_copy(update={"measurements": {**parent.measurements, **parent_added}})
        compared.append(
            row.model_copy(
                update={
                    "measurements": {**row.measurements, **added},
                    "comparison": {**row.comparison, **comparison},
                }
            )
        )
    compared = [
        row.model_copy(
            update={
                "gate": gate_verdict(request.gate, row, parent),
                "notes": kind.notes(parent, row),
            }
        )
        for row in compared
    ]
    compared.insert(0, parent.model_copy(update={"notes": kind.parent_notes(parent)}))
    flags = pareto_flags(engine_kind, compared)
    return [
        row.model_copy(update={"pareto": flag}) for row, flag in zip(compared, flags, strict=True)
    ]
