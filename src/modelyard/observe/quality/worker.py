"""The live judge: sampled answers wait in a bounded queue and a few workers score them
with the route's judge, within its budget. The request path only offers a sample (a
``put_nowait``); a full queue or a spent budget drops it, counted, and never waits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from modelyard.observe.metrics import Metrics
from modelyard.observe.quality.budget import JudgeBudget
from modelyard.observe.quality.judgements import LiveJudgementRecord, LiveJudgements
from modelyard.observe.quality.protocol import LiveJudgeStats
from modelyard.routing.protocol import LiveJudging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """An answered request picked for judging: what the judge reads of it."""

    request_id: str
    key_id: str
    user: str | None
    route: str
    version: str  # the version that answered, ``model@n``
    variant: str | None
    question: str
    answer: str
    setting: LiveJudging

    @property
    def judge_request_id(self) -> str:
        return f"{self.request_id}.judge"


@dataclass(frozen=True)
class Verdict:
    """What one judge call gave: its reply, or why there is none."""

    reply: str | None
    error: str | None
    judge: str | None  # the judge's version, when it resolved
    cost: float
    latency_s: float


# Asks the judge (through the serving path's routing, logged as judge traffic).
JudgeCall = Callable[[Sample, str], Awaitable[Verdict]]


@dataclass(frozen=True)
class Rubric:
    """The judge's prompt format and how a score is read from its reply: the eval judges'
    (``evaluate.judges.rubric_prompt``, ``rubric_score``), handed over by the app."""

    prompt: Callable[[str, str, str, tuple[int, int]], str]  # question, answer, rubric, scale
    score: Callable[[str, tuple[int, int]], float | None]  # reply, scale


@dataclass
class LiveJudgeCounts:
    sampled: int = 0
    judged: int = 0
    unscored: int = 0
    failed: int = 0
    dropped: int = 0
    over_budget: int = 0


class LiveJudge:
    def __init__(
        self,
        judgements: LiveJudgements,
        metrics: Metrics,
        rubric: Rubric,
        *,
        queue_size: int,
        concurrency: int,
        budget: JudgeBudget | None = None,
    ) -> None:
        self._judgements = judgements
        self._metrics = metrics
        self._rubric = rubric
        self._queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=queue_size)
        self._concurrency = concurrency
        self._budget = budget or JudgeBudget()
        self._in_flight = 0
        self.counts = LiveJudgeCounts()

    @property
    def pending(self) -> int:
        """Samples queued or being judged (and stored)."""
        return self._queue.qsize() + self._in_flight

    def stats(self) -> LiveJudgeStats:
        c = self.counts
        return LiveJudgeStats(
            queued=self._queue.qsize(),
            in_flight=self._in_flight,
            sampled=c.sampled,
            judged=c.judged,
            unscored=c.unscored,
            failed=c.failed,
            dropped=c.dropped,
            over_budget=c.over_budget,
        )

    def offer(self, sample: Sample) -> bool:
        """Queue ``sample`` for judging if the route's budget and the queue allow; never
        waits (the request path calls it)."""
        if not self._budget.allows(sample.route, sample.setting):
            self._count(sample.route, "over_budget")
            return False
        if self._concurrency == 0:
            self._count(sample.route, "dropped")
            return False
        try:
            self._queue.put_nowait(sample)
        except asyncio.QueueFull:
            self._count(sample.route, "dropped")
            return False
        self.counts.sampled += 1
        return True

    async def run(self, call: JudgeCall) -> None:
        """Judge queued samples, ``concurrency`` at a time, until cancelled (samples still
        queued then are not judged)."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(self._consume(call))

    async def _consume(self, call: JudgeCall) -> None:
        while True:
            sample = await self._queue.get()
            self._in_flight += 1
            try:
                await self._judge(sample, call)
            finally:
                self._in_flight -= 1
                self._queue.task_done()

    async def _judge(self, sample: Sample, call: JudgeCall) -> None:
        setting = sample.setting
        if not self._budget.take(sample.route, setting):  # spent while it waited
            self._count(sample.route, "over_budget")
            return
        prompt = self._rubric.prompt(sample.question, sample.answer, setting.rubric, setting.scale)
        verdict = await call(sample, prompt)
        self._budget.spend(sample.route, verdict.cost)
        score = None if verdict.reply is None else self._rubric.score(verdict.reply, setting.scale)
        low, high = setting.scale
        quality = None if score is None else (score - low) / (high - low)
        error = verdict.error
        if verdict.reply is None:
            self._count(sample.route, "failed")
        elif quality is None:
            self._count(sample.route, "unscored")
            error = f"no score from {low} to {high} in the judge's reply"
        else:
            self._count(sample.route, "judged")
            self._metrics.live_scored(sample.route, sample.version, quality)
        record = LiveJudgementRecord(
            request_id=sample.request_id,
            judge_request_id=sample.judge_request_id,
            route=sample.route,
            version=sample.version,
            variant=sample.variant,
            judge=verdict.judge,
            score=score,
            quality=quality,
            scale=setting.scale,
            error=error,
            latency_ms=verdict.latency_s * 1000,
            cost=verdict.cost,
        )
        try:
            await asyncio.to_thread(self._judgements.save, record)
        except SQLAlchemyError as failure:  # the store is down: this judgement is lost
            log.warning("live judgement of %s not stored: %s", sample.request_id, failure)

    def _count(self, route: str, outcome: str) -> None:
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
        self._metrics.live_judged(route, outcome)
