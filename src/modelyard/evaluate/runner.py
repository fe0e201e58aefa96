"""Running a task: every item through the serving path (``/v1/chat/completions``), with
bounded concurrency, items recorded in batches so an interrupted run resumes where it
stopped, then the task's metrics over the answers.

httpx is imported where a request is sent: the caller has made its client by then, and a
server that never runs a task does not load it (issue 8)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelyard.evaluate.contamination import check_overlap
from modelyard.evaluate.counterfactual import twins_of
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.judges import Judgements, RubricJudge, rubric_scores, summary
from modelyard.evaluate.metrics import metric
from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.evaluate.robustness.apply import ItemPerturber
from modelyard.evaluate.runs import EvalRuns, ItemResult, dataset_digest, sample, twin_index
from modelyard.evaluate.slices import item_attributes
from modelyard.evaluate.tasks import (
    Item,
    Task,
    apply_filters,
    compile_filters,
    few_shot_pool,
    messages_for,
    reference_of,
)
from modelyard.evaluate.tasks.loading import swapped_fields
from modelyard.evaluate.tasks.spec import CounterfactualSpec
from modelyard.jobs import ask_chat

if TYPE_CHECKING:
    import httpx

SAVE_EVERY = 20  # items recorded per transaction (what an interruption may lose)
Progress = Callable[[int, int], None]


async def run_task(
    client: httpx.AsyncClient,
    runs: EvalRuns,
    task: Task,
    items: list[Item],
    model: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    concurrency: int = 4,
    actor: str,
    resume: int | None = None,
    progress: Progress | None = None,
    allow_train_overlap: bool = False,
) -> EvalRunOut:
    """Run (or resume) ``task`` against ``model``; ``client`` talks to a modelyard server
    (its base URL and key already set). Items that a curated dataset trains on are refused
    (TrainEvalOverlap) unless ``allow_train_overlap``, before anything is sent."""
    if resume is None:
        indices = sample(len(items), limit, seed)
        run_id = await asyncio.to_thread(
            create_run, runs, task, items, model, indices, seed, actor, allow_train_overlap
        )
    else:
        run_id = resume
    spec = await asyncio.to_thread(runs.spec, run_id)
    indices = list(spec["indices"])
    twins = run_twins(task, items, spec)
    done = await asyncio.to_thread(runs.done_indices, run_id)
    todo = _unanswered(items, indices, twins, done)
    filters = compile_filters(task.filters)
    gate = asyncio.Semaphore(concurrency)
    saver = _Saver(runs, run_id)
    finished = len(done)
    perturber = await asyncio.to_thread(ItemPerturber.for_task, task, items)

    async def one(index: int, item: Item) -> None:
        nonlocal finished
        async with gate:
            if perturber is not None:  # a robustness run: the prompt inputs perturbed
                item = await perturber.perturb(client, item, index)
            result = await _ask(client, task, items, index, item, model, filters)
        finished += 1
        if progress is not None:
            progress(finished, len(indices) + len(twins))
        await saver.add(result)

    try:
        await asyncio.gather(*(one(index, item) for index, item in todo))
    finally:
        await saver.flush()
    answers = await asyncio.to_thread(runs.items, run_id)
    metrics = await asyncio.to_thread(score, task, answers)
    for judge in task.judges:
        metrics[f"judge:{judge.name}"] = await judge_run(client, runs, run_id, answers, judge)
    facts = await serving_facts(client, {a.version for a in answers if a.version})
    return await asyncio.to_thread(runs.finish, run_id, metrics, facts)


class _Saver:
    """Saves a run's answers ``SAVE_EVERY`` at a time. Saves run to the end even when the
    run is cancelled: a cancelled ``to_thread`` still waiting for a worker thread would
    never run, and its batch would be lost."""

    def __init__(self, runs: EvalRuns, run_id: int) -> None:
        self._runs, self._run_id = runs, run_id
        self._pending: list[ItemResult] = []
        self._saves: list[asyncio.Future[None]] = []

    def _save(self) -> asyncio.Future[None]:
        batch = self._pending[:]
        self._pending.clear()
        self._saves.append(
            asyncio.ensure_future(asyncio.to_thread(self._runs.add, self._run_id, batch))
        )
        return self._saves[-1]

    async def add(self, result: ItemResult) -> None:
        self._pending.append(result)
        if len(self._pending) >= SAVE_EVERY:
            await asyncio.shield(self._save())

    async def flush(self) -> None:
        if self._pending:
            self._save()
        await asyncio.shield(asyncio.gather(*self._saves))


def create_run(
    runs: EvalRuns,
    task: Task,
    items: list[Item],
    model: str,
    indices: list[int],
    seed: int,
    actor: str,
    allow_train_overlap: bool,
) -> int:
    """A new run, once the train-versus-eval check lets it be (on a worker thread); ``run_task``
    with ``resume`` runs it (a tuning trial records the run's id before its items go out)."""
    training = DatasetService(runs.store).training_overlap
    overlap = check_overlap(task, items, indices, training, allow_train_overlap)
    twins = twins_for(task, items, indices)
    attributes = item_attributes(items, indices)
    return runs.create(
        task, dataset_digest(items), model, indices, seed, actor, overlap, attributes, list(twins)
    )


def run_twins(task: Task, items: list[Item], spec: dict[str, Any]) -> dict[int, Item]:
    """The twins a run asks, made as its stored spec says (on a resume too)."""
    asked = spec.get("counterfactual")
    swaps = CounterfactualSpec.model_validate(asked) if asked else task.counterfactual
    made_with = task.model_copy(update={"counterfactual": swaps})
    return twins_for(made_with, items, spec.get("twins", []))


def _unanswered(
    items: list[Item], indices: list[int], twins: dict[int, Item], done: set[int]
) -> list[tuple[int, Item]]:
    """The items and twins (at their negative index) that have no answer yet."""
    return [(i, items[i]) for i in indices if i not in done] + [
        (twin_index(i), twin) for i, twin in twins.items() if twin_index(i) not in done
    ]


def twins_for(task: Task, items: list[Item], indices: list[int]) -> dict[int, Item]:
    """The counterfactual twins of the items of ``indices`` (none unless the task asks)."""
    if task.counterfactual is None:
        return {}
    return twins_of(items, indices, swapped_fields(task), task.counterfactual.swaps)


async def serving_facts(client: httpx.AsyncClient, versions: set[str]) -> dict[str, Any]:
    """What the server says of the versions that answered (parameters, size, context) and
    its peak memory; empty when the key may not read ``/api/engines``."""
    import httpx

    try:
        response = await client.get("/api/engines")
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    body = response.json()
    engines = {
        f"{e['model']}@{e['version']}": {
            "context_length": (e.get("info") or {}).get("context_length"),
            "size_bytes": (e.get("info") or {}).get("size_bytes"),
            **{
                k: v
                for k, v in ((e.get("info") or {}).get("details") or {}).items()
                if k in ("parameters", "description", "dimensions")
            },
        }
        for e in body.get("data", [])
    }
    return {
        "versions": {v: engines[v] for v in sorted(versions) if v in engines},
        "server_peak_rss_bytes": (body.get("process") or {}).get("peak_rss_bytes"),
    }


async def judge_run(
    client: httpx.AsyncClient,
    runs: EvalRuns,
    run_id: int,
    answers: list[EvalItemOut],
    judge: RubricJudge,
) -> dict[str, Any]:
    """Score a run's answers with a rubric judge; the judge's prompts and outputs are
    stored with each score."""
    judged = await rubric_scores(client, judge, [a.question for a in answers], answers)
    store = Judgements(runs.store)
    await asyncio.to_thread(store.save, run_id, judge.name, "rubric", judge.model, judged)
    return {
        **summary(judged),
        "higher_is_better": True,
        "details": {"model": judge.model, "scale": list(judge.scale)},
    }


async def _ask(
    client: httpx.AsyncClient,
    task: Task,
    items: list[Item],
    index: int,
    item: Item,
    model: str,
    filters: list[Callable[[str], str]],
) -> ItemResult:
    """Ask ``item``: the item ``index`` of ``items``, or (a negative ``index``) its twin."""
    original = index if index >= 0 else twin_index(index)
    messages = messages_for(task, item, few_shot_pool(task, items, original))
    reply = await ask_chat(client, {"model": model, "messages": messages, **task.generation})
    return ItemResult(
        item_index=index,
        request_id=reply.request_id,
        version=reply.version,
        question=str(messages[-1]["content"]),
        prediction=reply.text,
        extracted=apply_filters(reply.text, filters),
        reference=reference_of(task, item),
        error=reply.error,
        latency_ms=reply.latency_ms,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )


def score(task: Task, answers: list[EvalItemOut]) -> dict[str, Any]:
    """Each metric of the task over the run's answers (CPU work: on a worker thread)."""
    predictions = [a.extracted for a in answers]
    references = [a.reference for a in answers]
    out: dict[str, Any] = {}
    for spec in task.metrics:
        measure = metric(spec.name, **spec.options)
        result = measure.compute(predictions, references)
        out[result.name] = {
            "value": result.value,
            "higher_is_better": (
                measure.higher_is_better if spec.higher_is_better is None else spec.higher_is_better
            ),
            "details": result.details,
        }
    return out
