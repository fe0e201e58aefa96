"""Running a task: every item through the serving path (``/v1/chat/completions``), with
bounded concurrency, items recorded in batches so an interrupted run resumes where it
stopped, then the task's metrics over the answers.

httpx is imported where a request is sent: the caller has made its client by then, and a
server that never runs a task does not load it (issue 8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelyard.evaluate.judges import Judgements, RubricJudge, rubric_scores, summary
from modelyard.evaluate.metrics import metric
from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.evaluate.runs import EvalRuns, ItemResult, dataset_digest, sample
from modelyard.evaluate.tasks import (
    Item,
    Task,
    apply_filters,
    compile_filters,
    few_shot_pool,
    messages_for,
    reference_of,
)

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
) -> EvalRunOut:
    """Run (or resume) ``task`` against ``model``; ``client`` talks to a modelyard server
    (its base URL and key already set)."""
    digest = dataset_digest(items)
    if resume is None:
        indices = sample(len(items), limit, seed)
        run_id = await asyncio.to_thread(runs.create, task, digest, model, indices, seed, actor)
    else:
        run_id = resume
        spec = await asyncio.to_thread(runs.spec, run_id)
        indices = list(spec["indices"])
    done = await asyncio.to_thread(runs.done_indices, run_id)
    todo = [i for i in indices if i not in done]
    filters = compile_filters(task.filters)
    gate = asyncio.Semaphore(concurrency)
    pending: list[ItemResult] = []
    finished = len(done)

    async def one(index: int) -> None:
        nonlocal finished
        async with gate:
            result = await _ask(client, task, items, index, model, filters)
        pending.append(result)
        finished += 1
        if progress is not None:
            progress(finished, len(indices))
        if len(pending) >= SAVE_EVERY:
            batch = pending[:]
            pending.clear()
            await asyncio.to_thread(runs.add, run_id, batch)

    try:
        await asyncio.gather(*(one(index) for index in todo))
    finally:
        if pending:
            await asyncio.to_thread(runs.add, run_id, pending[:])
    answers = await asyncio.to_thread(runs.items, run_id)
    metrics = await asyncio.to_thread(score, task, answers)
    for judge in task.judges:
        metrics[f"judge:{judge.name}"] = await judge_run(client, runs, run_id, answers, judge)
    facts = await serving_facts(client, {a.version for a in answers if a.version})
    return await asyncio.to_thread(runs.finish, run_id, metrics, facts)


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
    model: str,
    filters: list[Callable[[str], str]],
) -> ItemResult:
    import httpx

    item = items[index]
    messages = messages_for(task, item, few_shot_pool(task, items, index))
    body = {"model": model, "messages": messages, **task.generation}
    started = time.perf_counter()
    error: str | None = None
    text, version, request_id = "", None, None
    usage: dict[str, Any] = {}
    try:
        response = await client.post("/v1/chat/completions", json=body)
        request_id = response.headers.get("x-modelyard-request-id")
        version = response.headers.get("x-modelyard-version")
        data = response.json()
        if response.status_code == 200:
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
        else:
            error = f"{response.status_code}: {data.get('error', {}).get('message', data)}"
    except (httpx.HTTPError, ValueError, KeyError) as failure:
        error = f"{type(failure).__name__}: {failure}"
    return ItemResult(
        item_index=index,
        request_id=request_id,
        version=version,
        question=str(messages[-1]["content"]),
        prediction=text,
        extracted=apply_filters(text, filters),
        reference=reference_of(task, item),
        error=error,
        latency_ms=(time.perf_counter() - started) * 1000,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
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
