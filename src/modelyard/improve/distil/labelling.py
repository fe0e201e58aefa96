"""Labelling a dataset version with a teacher: every item through the serving path
(``gateway.ask_teacher``), a bounded number at a time, answers recorded in batches, then
a labelled version whose provenance names the teacher.

Resuming: a run records each answer (in batches of ``SAVE_EVERY``, and whatever is
pending when it is stopped). Starting the same labelling again (same dataset version,
teacher, labels, prompt, fields and sampling) continues its latest run: items it holds
answers for are never asked again, items that failed are asked again, the rest are asked
for the first time; ``fresh`` starts a new run instead. A run another process is labelling
right now (its heartbeat is fresh) is refused with 409.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelyard.evaluate.contamination import fingerprint
from modelyard.evaluate.datasets import DatasetOut, DatasetService, EmptyDataset, StoredItem
from modelyard.improve.distil.errors import InvalidLabelling
from modelyard.improve.distil.label_runs import LabelAnswer, LabelRuns, RunPlan, labelling_key
from modelyard.improve.distil.prompts import DEFAULT_SYSTEM, LabelPrompt, input_field_of
from modelyard.improve.distil.protocol import LabelRequest, LabelRunDetail, LabelRunOut
from modelyard.registry.protocol import version_name
from modelyard.store import Store

if TYPE_CHECKING:
    import httpx

SAVE_EVERY = 20  # answers recorded per transaction (what a crash may lose)
HEARTBEAT_S = 15.0
MAX_LABELS = 1000  # as many as a request may list
Progress = Callable[[int, int], None]
Item = dict[str, Any]


def dataset_reference(datasets: DatasetService, reference: str) -> DatasetOut:
    """The version ``name@version`` (or ``name``, its latest) names; DatasetNotFound."""
    name, _, number = reference.partition("@")
    return datasets.get(name, int(number) if number else None)


def start_labelling(store: Store, request: LabelRequest, actor: str) -> LabelRunOut:
    """The run that labels ``request``: the latest run of the same labelling, resumed, or
    a new one (``fresh``, or none yet); claimed for this caller. Checks the dataset, the
    fields and the label set before anything is sent."""
    datasets, runs = DatasetService(store), LabelRuns(store)
    dataset = dataset_reference(datasets, request.dataset)
    if not request.fresh:
        latest = runs.latest_of(labelling_key(dataset.name, dataset.version, request))
        if latest is not None:
            runs.claim(latest, request)
            return runs.get(latest)
    items = datasets.items(dataset.name, dataset.version)
    input_field = input_field_of(items[0], request.input_field) if items else "input"
    labels = request.labels or _labels_from(items, request.labels_from or "")
    prompt = LabelPrompt(
        request.system or DEFAULT_SYSTEM, request.template, tuple(labels), input_field
    )
    for item in items:
        if not isinstance(item.get(input_field), str):
            raise InvalidLabelling(
                f"an item of {request.dataset} has no text in '{input_field}'",
                param="input_field",
            )
    prompt.messages(items[0])  # a template that does not render fails here, not per item
    run_id = runs.create(
        dataset.name, dataset.version, request, labels, input_field, len(items), actor
    )
    return runs.get(run_id)


def _labels_from(items: list[Item], field: str) -> list[str]:
    found = sorted({str(item[field]) for item in items if item.get(field) not in (None, "")})
    if not 2 <= len(found) <= MAX_LABELS:
        raise InvalidLabelling(
            f"the items' '{field}' holds {len(found)} distinct value(s); a label set has 2 "
            f"to {MAX_LABELS} (or give labels)",
            param="labels_from",
        )
    return found


async def label(
    client: httpx.AsyncClient, store: Store, run_id: int, progress: Progress | None = None
) -> LabelRunOut:
    """Ask the teacher about every item the run does not hold an answer for, then build
    the labelled version. Stopped (cancelled) runs record what they got and end
    ``stopped``; a later start continues them."""
    runs = LabelRuns(store)
    plan = await asyncio.to_thread(runs.plan, run_id)
    items = await asyncio.to_thread(DatasetService(store).items, plan.dataset, plan.dataset_version)
    beat = asyncio.create_task(_heartbeat(runs, run_id))
    try:
        await _ask_all(client, runs, plan, items, progress)
    except asyncio.CancelledError:
        await asyncio.shield(asyncio.to_thread(runs.end, run_id, "stopped", "stopped; resumable"))
        raise
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    return await asyncio.to_thread(finish, store, plan, items)


async def _heartbeat(runs: LabelRuns, run_id: int) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        await asyncio.to_thread(runs.beat, run_id)


class _Answers:
    """Answers on their way to the store, ``SAVE_EVERY`` to a transaction. A save, once
    begun, is never cancelled (a cancelled ``to_thread`` that has not started yet would
    drop its batch): a stopped run waits for its saves, then saves what is pending."""

    def __init__(self, runs: LabelRuns, run_id: int) -> None:
        self._runs, self._run_id = runs, run_id
        self._pending: list[LabelAnswer] = []
        self._saving: list[asyncio.Future[None]] = []

    async def add(self, answer: LabelAnswer) -> None:
        self._pending.append(answer)
        if len(self._pending) >= SAVE_EVERY:
            await asyncio.shield(self._save())

    def _save(self) -> asyncio.Future[None]:
        batch, self._pending = self._pending, []
        saving = asyncio.ensure_future(asyncio.to_thread(self._runs.add, self._run_id, batch))
        self._saving.append(saving)
        return saving

    async def flush(self) -> None:
        if self._pending:
            self._save()
        await asyncio.shield(asyncio.gather(*self._saving))


async def _ask_all(
    client: httpx.AsyncClient,
    runs: LabelRuns,
    plan: RunPlan,
    items: list[Item],
    progress: Progress | None,
) -> None:
    from modelyard.improve.distil.gateway import ask_teacher

    request = plan.request
    prompt = LabelPrompt(
        request.system or DEFAULT_SYSTEM, request.template, plan.labels, plan.input_field
    )
    done = await asyncio.to_thread(runs.done_indices, plan.id)
    todo = [index for index in range(len(items)) if index not in done]
    gate = asyncio.Semaphore(request.concurrency)
    answers = _Answers(runs, plan.id)
    finished = len(done)

    async def one(index: int) -> None:
        nonlocal finished
        async with gate:
            messages = prompt.messages(items[index])
            answer = await ask_teacher(
                client, plan.teacher, index, messages, request.generation, plan.labels
            )
        finished += 1
        if progress is not None:
            progress(finished, len(items))
        await answers.add(answer)

    try:
        await asyncio.gather(*(one(index) for index in todo))
    finally:
        await answers.flush()


def finish(store: Store, plan: RunPlan, items: list[Item]) -> LabelRunOut:
    """The labelled version of the items the teacher gave a label, and the run's end (on
    a worker thread). Nothing labelled: the run fails."""
    runs = LabelRuns(store)
    answers = {answer.item_index: answer for answer in runs.answers(plan.id)}
    labelled = [
        _labelled(items[index], answer, plan.request.label_field, plan.input_field)
        for index, answer in sorted(answers.items())
        if answer.label is not None
    ]
    if not labelled:
        return runs.end(plan.id, "failed", "the teacher gave no item a label of the label set")
    out = runs.get(plan.id)  # the counts and versions, for the provenance
    name = plan.request.name or f"{plan.dataset}-labelled"
    source = provenance(plan, out)
    try:
        version = DatasetService(store).register_stream(
            name, iter(labelled), source, out.created_by
        )
    except EmptyDataset as error:  # not reached: labelled is not empty
        return runs.end(plan.id, "failed", str(error))
    return runs.end(plan.id, "done", result=(version.name, version.version))


def _labelled(item: Item, answer: LabelAnswer, label_field: str, input_field: str) -> StoredItem:
    data = {**item, label_field: answer.label, "teacher_request_id": answer.request_id}
    split = item.get("split")
    text = item.get(input_field)
    ids = item.get("request_ids")
    first = ids[0] if isinstance(ids, list) and ids else item.get("request_id")
    return StoredItem(
        data,
        request_id=first if isinstance(first, str) else None,
        split=split if isinstance(split, str) else None,
        fingerprint=fingerprint(text) if isinstance(split, str) and isinstance(text, str) else None,
    )


def provenance(plan: RunPlan, run: LabelRunOut) -> dict[str, Any]:
    """What the labelled version's source records: where its labels came from."""
    request = plan.request
    return {
        "kind": "labelled",
        "from": version_name(plan.dataset, plan.dataset_version),
        "label_run": plan.id,
        "teacher": {"route": plan.teacher, "versions": run.versions},
        "prompt": {"system": request.system or DEFAULT_SYSTEM, "template": request.template},
        "labels": list(plan.labels),
        "input_field": plan.input_field,
        "label_field": request.label_field,
        "generation": dict(request.generation),
        "counts": run.counts.model_dump(),
        "unmapped": "answers outside the label set are left out (see the run's examples)",
    }


def run_detail(store: Store, run_id: int) -> LabelRunDetail:
    """A run with its label distribution, and the texts of its examples of answers
    outside the label set and of failures."""
    detail = LabelRuns(store).detail(run_id)
    name, _, number = detail.dataset.partition("@")
    datasets = DatasetService(store)

    def text(index: int) -> str:
        found = datasets.items(name, int(number), index, 1)
        return str(found[0].get(detail.input_field, "")) if found else ""

    for example in (*detail.unmapped_examples, *detail.failed_examples):
        example.text = text(example.item_index)
    return detail
