"""LLM-as-judge: a route or version scores answers against a rubric, or picks the better
of two answers with the positions swapped. Every judgement keeps the judge's prompts and
raw outputs.

httpx is imported where a judge is asked: the caller has made its client by then, and a
server that never runs a judge does not load it (issue 8)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from modelyard.store import Store
from modelyard.store.tables import EvalJudgementRow

if TYPE_CHECKING:
    import httpx

    # Annotations only: the wire types import the task's spec, which imports this module.
    from modelyard.evaluate.protocol import EvalItemOut

RUBRIC_PROMPT = """You are grading an answer.

Question or task:
{question}

Reference answer (may be empty):
{reference}

Answer to grade:
{answer}

Rubric: {rubric}
Reply with a single integer from {low} to {high}, nothing else."""

PAIR_PROMPT = """Two assistants answered the same question. {criteria}

Question or task:
{question}

Answer A:
{first}

Answer B:
{second}

Reply with the single letter A or B for the better answer, nothing else."""
_INTEGER = re.compile(r"-?\d+")
_LETTER = re.compile(r"\b([AB])\b")


class RubricJudge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    model: str = Field(min_length=1, description="The judge: a route or a version (m@n).")
    rubric: str = Field(min_length=1)
    scale: tuple[int, int] = (1, 5)


@dataclass(frozen=True)
class Judgement:
    item_index: int
    prompts: list[Any]
    outputs: list[str]
    score: float | None
    error: str | None


def rubric_prompt(
    question: str, answer: str, rubric: str, scale: tuple[int, int], reference: str = ""
) -> str:
    """What a rubric judge is asked of one answer (eval runs and live judging alike)."""
    low, high = scale
    return RUBRIC_PROMPT.format(
        question=question, reference=reference, answer=answer, rubric=rubric, low=low, high=high
    )


def rubric_score(output: str, scale: tuple[int, int]) -> float | None:
    """The first integer on the scale in a judge's reply; None when it holds none."""
    low, high = scale
    found = [int(n) for n in _INTEGER.findall(output) if low <= int(n) <= high]
    return float(found[0]) if found else None


async def _ask(client: httpx.AsyncClient, model: str, prompt: str) -> str:
    response = await client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": 8,
        },
    )
    data = response.json()
    if response.status_code != 200:
        raise JudgeFailed(f"{response.status_code}: {data.get('error', {}).get('message')}")
    return str(data["choices"][0]["message"]["content"] or "")


class JudgeFailed(Exception):
    pass


async def rubric_scores(
    client: httpx.AsyncClient,
    judge: RubricJudge,
    questions: Sequence[str],
    items: Sequence[EvalItemOut],
    concurrency: int = 4,
) -> list[Judgement]:
    """Score each answer on the judge's scale (None when the reply holds no score in it)."""
    import httpx

    low, high = judge.scale
    gate = asyncio.Semaphore(concurrency)

    async def one(question: str, item: EvalItemOut) -> Judgement:
        reference = (
            item.reference if isinstance(item.reference, str) else " | ".join(item.reference)
        )
        prompt = rubric_prompt(question, item.prediction, judge.rubric, judge.scale, reference)
        try:
            async with gate:
                output = await _ask(client, judge.model, prompt)
        except (httpx.HTTPError, JudgeFailed, KeyError, ValueError) as failure:
            return Judgement(item.item_index, [prompt], [], None, str(failure))
        score = rubric_score(output, judge.scale)
        problem = (
            None if score is not None else f"no score from {low} to {high} in the judge's reply"
        )
        return Judgement(item.item_index, [prompt], [output], score, problem)

    return list(await asyncio.gather(*(one(q, i) for q, i in zip(questions, items, strict=True))))


async def pairwise(
    client: httpx.AsyncClient,
    model: str,
    criteria: str,
    questions: Sequence[str],
    baseline: Sequence[EvalItemOut],
    candidate: Sequence[EvalItemOut],
    concurrency: int = 4,
) -> list[Judgement]:
    """Candidate against baseline, asked twice with the answers' positions swapped:
    1.0 when the candidate wins both, 0.0 when the baseline does, 0.5 when the judge
    contradicts itself (position bias) — a tie."""
    import httpx

    gate = asyncio.Semaphore(concurrency)

    async def one(question: str, base: EvalItemOut, cand: EvalItemOut) -> Judgement:
        first = PAIR_PROMPT.format(
            criteria=criteria, question=question, first=cand.prediction, second=base.prediction
        )
        swapped = PAIR_PROMPT.format(
            criteria=criteria, question=question, first=base.prediction, second=cand.prediction
        )
        try:
            async with gate:
                outputs = [await _ask(client, model, first), await _ask(client, model, swapped)]
        except (httpx.HTTPError, JudgeFailed, KeyError, ValueError) as failure:
            return Judgement(cand.item_index, [first, swapped], [], None, str(failure))
        picks = [_letter(o) for o in outputs]
        if None in picks:
            return Judgement(cand.item_index, [first, swapped], outputs, None, "no A or B")
        wins = (picks[0] == "A") + (picks[1] == "B")  # the candidate is A, then B
        return Judgement(cand.item_index, [first, swapped], outputs, wins / 2, None)

    return list(
        await asyncio.gather(
            *(one(q, b, c) for q, b, c in zip(questions, baseline, candidate, strict=True))
        )
    )


def _letter(output: str) -> str | None:
    match = _LETTER.search(output.strip().upper())
    return match.group(1) if match else None


class Judgements:
    def __init__(self, store: Store) -> None:
        self._store = store

    def save(
        self,
        run_id: int,
        judge: str,
        kind: Literal["rubric", "pairwise"],
        model: str,
        judgements: Sequence[Judgement],
    ) -> None:
        with self._store.session() as session:
            session.add_all(
                EvalJudgementRow(
                    run_id=run_id,
                    item_index=j.item_index,
                    judge=judge,
                    kind=kind,
                    model=model,
                    prompts=j.prompts,
                    outputs=j.outputs,
                    score=j.score,
                    error=j.error,
                )
                for j in judgements
            )

    def of_run(self, run_id: int) -> list[dict[str, Any]]:
        with self._store.session() as session:
            rows = session.scalars(
                select(EvalJudgementRow)
                .where(EvalJudgementRow.run_id == run_id)
                .order_by(EvalJudgementRow.judge, EvalJudgementRow.item_index)
            )
            return [
                {
                    "judge": r.judge,
                    "kind": r.kind,
                    "model": r.model,
                    "item_index": r.item_index,
                    "score": r.score,
                    "error": r.error,
                    "prompts": r.prompts,
                    "outputs": r.outputs,
                }
                for r in rows
            ]


def summary(judgements: Sequence[Judgement]) -> dict[str, Any]:
    scores = [j.score for j in judgements if j.score is not None]
    return {
        "value": sum(scores) / len(scores) if scores else None,
        "scored": len(scores),
        "failed": len(judgements) - len(scores),
    }
