"""Combination routes: one answer made from several models' answers.

- **cascade**: the small model answers first, buffered; when its confidence (token
  logprobs, or a validator: JSON, a pattern, a label set) holds, its answer is returned,
  otherwise the large model answers, streamed as it comes.
- **vote**: every target answers; the most frequent answer (stripped, case-folded) wins,
  a tie going to the earliest target among the tied answers.
- **best_of_n**: the target answers ``n`` times; the judge scores each answer and the
  best is returned, a tie going to the earliest answer.

Members are started as any target is (``start_generation``: the capability check applies
to each). Each model call whose answer is not returned is reported as a ``Call`` to the
caller's callback as soon as that is known (before a failure that follows it), for the
request log: routing logs nothing itself."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from modelyard.engines import Chunk, EngineError, GenerationRequest, Message, Need, Usage
from modelyard.routing.generation import (
    Generation,
    Launch,
    Unhonoured,
    WrongTask,
    start_generation,
)
from modelyard.routing.protocol import BestOfN, Cascade, Confidence, Vote
from modelyard.routing.table import Combination, Target

JUDGE_SYSTEM = (
    "You grade answers. Rate how well the answer responds to the request, from 0 (useless) "
    "to 10 (perfect). Reply with the number only."
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Call:
    """A member's model call whose answer was not the one returned (it is charged and
    logged all the same)."""

    kind: str  # cascade, vote, best_of_n
    role: str  # small, voter, candidate, judge
    target: Target
    at: datetime
    status: int
    error_code: str | None
    latency_s: float
    usage: Usage | None
    response: str | None


@dataclass(frozen=True)
class Decision:
    """How a combination chose its answer: what the request log and metrics say."""

    kind: str  # cascade, vote, best_of_n
    # cascade: confident (the small model answered), low_confidence, invalid, small_failed,
    # small_unable (the large one answered); vote: majority, tie; best_of_n: best.
    reason: str
    confidence: float | None = None  # the small model's, for a logprobs cascade
    large: Target | None = None  # a cascade's large model (what answering there would cost)

    @property
    def label(self) -> str:
        """``kind:reason``: the request log's variant and the response's header."""
        return f"{self.kind}:{self.reason}"

    def logged(self) -> dict[str, str | float]:
        """What the request row's content keeps of the decision."""
        kept: dict[str, str | float] = {"kind": self.kind, "decision": self.reason}
        if self.confidence is not None:
            kept["confidence"] = self.confidence
        return kept


@dataclass
class _Answer:
    """A member's whole answer (its chunks as the engine gave them), or how it failed."""

    role: str
    target: Target
    at: datetime
    started: float
    generation: Generation | None = None
    chunks: tuple[Chunk, ...] = ()
    error: EngineError | Unhonoured | WrongTask | None = None
    ended: float = 0.0

    @property
    def text(self) -> str:
        return "".join(chunk.text for chunk in self.chunks)

    def call(self, kind: str) -> Call:
        usage = self.generation.usage if self.generation is not None else None
        return Call(
            kind=kind,
            role=self.role,
            target=self.target,
            at=self.at,
            status=200 if self.error is None else self.error.status,
            error_code=None if self.error is None else self.error.code,
            latency_s=self.ended - self.started,
            usage=usage,
            response=None if self.generation is None else self.text,
        )


Report = Callable[[Call], None]  # hears each model call whose answer is not returned


async def combine(
    combination: Combination, launch: Launch, report: Report
) -> tuple[Generation, Decision]:
    """The combination's answer, and how it was chosen."""
    policy, targets = combination.policy, combination.targets
    if isinstance(policy, Cascade):
        return await cascade(policy, targets[0], targets[1], launch, report)
    if isinstance(policy, Vote):
        return await vote(targets, launch, report)
    return await best_of_n(policy, targets[0], targets[1], launch, report)


# -- cascade ------------------------------------------------------------------------------


async def cascade(
    policy: Cascade, small: Target, large: Target, launch: Launch, report: Report
) -> tuple[Generation, Decision]:
    """The small model's answer when it is confident of it, else the large model's."""
    signal = policy.confidence
    add_logprobs = signal.min_probability is not None and not asked_logprobs(launch.request)
    request = with_logprobs(launch.request) if add_logprobs else launch.request
    answer = await _buffered(replace(launch, request=request, restorer=None), small, "small")
    confidence: float | None = None
    if isinstance(answer.error, Unhonoured):
        reason = "small_unable"
    elif answer.error is not None:
        if answer.error.status < 500:
            report(answer.call("cascade"))
            raise answer.error  # the request's own fault: the large model would refuse it too
        reason = "small_failed"
    else:
        confidence = probability(answer.chunks) if signal.min_probability is not None else None
        reason = "confident" if _confident(signal, answer.text, confidence) else _doubt(signal)
    if reason == "confident":
        generation = replayed(answer, launch, strip_logprobs=add_logprobs)
        return generation, Decision("cascade", reason, confidence=confidence, large=large)
    report(answer.call("cascade"))
    generation = await start_generation(launch, large)
    return generation, Decision("cascade", reason, confidence=confidence, large=large)


def asked_logprobs(request: GenerationRequest) -> bool:
    """Whether the client asked for logprobs (a completion's ``logprobs: 0`` asks too)."""
    value = request.openai.get("logprobs")
    return value is not None and value is not False


def with_logprobs(request: GenerationRequest) -> GenerationRequest:
    """The request asking for token logprobs (chat: ``true``; a completion: 0 alternatives),
    which the engine must honour (a ``logprobs`` need)."""
    value: bool | int = True if request.messages is not None else 0
    needs = (*request.needs, Need("logprobs", "logprobs"))
    return replace(request, openai={**request.openai, "logprobs": value}, needs=needs)


def token_logprobs(chunks: Sequence[Chunk]) -> list[float]:
    """Choice 0's token logprobs in relayed OpenAI chunks or completions (chat's
    ``logprobs.content[].logprob``, a completion's ``logprobs.token_logprobs``)."""
    found: list[float] = []
    for chunk in chunks:
        for choice in (chunk.openai or {}).get("choices") or ():
            if choice.get("index", 0) == 0:
                found += _logprobs_of(choice.get("logprobs"))
    return found


def _logprobs_of(logprobs: object) -> list[float]:
    if not isinstance(logprobs, Mapping):
        return []
    content = logprobs.get("content")
    if isinstance(content, list):
        values = [entry.get("logprob") for entry in content if isinstance(entry, Mapping)]
    else:
        values = list(logprobs.get("token_logprobs") or ())
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def probability(chunks: Sequence[Chunk]) -> float | None:
    """The geometric mean of the answer's token probabilities; None without logprobs."""
    values = token_logprobs(chunks)
    return math.exp(sum(values) / len(values)) if values else None


def _confident(signal: Confidence, text: str, confidence: float | None) -> bool:
    if signal.min_probability is not None:
        return confidence is not None and confidence >= signal.min_probability
    answer = text.strip()
    if signal.valid_json:
        try:
            json.loads(answer)
        except ValueError:
            return False
        return True
    if signal.pattern is not None:
        return re.fullmatch(signal.pattern, answer) is not None
    return answer in (signal.labels or ())


def _doubt(signal: Confidence) -> str:
    return "low_confidence" if signal.min_probability is not None else "invalid"


# -- vote ---------------------------------------------------------------------------------


async def vote(
    targets: Sequence[Target], launch: Launch, report: Report
) -> tuple[Generation, Decision]:
    """The most frequent answer; a tie goes to the earliest target's among the tied."""
    inner = replace(launch, restorer=None)
    answers = await asyncio.gather(*(_buffered(inner, t, "voter") for t in targets))
    answered = [a for a in answers if a.error is None]
    if not answered:
        _report(report, "vote", answers)
        raise _first_error(answers)
    winner, reason = majority([a.text for a in answered])
    chosen = answered[winner]
    _report(report, "vote", [a for a in answers if a is not chosen])
    return replayed(chosen, launch), Decision("vote", reason)


def majority(texts: Sequence[str]) -> tuple[int, str]:
    """The index of the winning answer (its first occurrence) and ``majority`` or ``tie``:
    answers are compared stripped and case-folded; among answers with the most votes the
    one given first wins."""
    keys = [text.strip().casefold() for text in texts]
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    most = max(counts.values())
    tied = [key for key, count in counts.items() if count == most]  # in order of first vote
    return keys.index(tied[0]), "majority" if len(tied) == 1 else "tie"


# -- best of n ----------------------------------------------------------------------------


async def best_of_n(
    policy: BestOfN, target: Target, judge: Target, launch: Launch, report: Report
) -> tuple[Generation, Decision]:
    """The target's best of ``n`` answers by the judge's scores."""
    inner = replace(launch, restorer=None)
    answers = await asyncio.gather(
        *(_buffered(inner, target, "candidate") for _ in range(policy.n))
    )
    answered = [a for a in answers if a.error is None]
    if not answered:
        _report(report, "best_of_n", answers)
        raise _first_error(answers)
    question = _question(launch.request)
    verdicts = await asyncio.gather(
        *(_buffered(_judging(launch, question, a.text), judge, "judge") for a in answered)
    )
    scores = [score(v.text) if v.error is None else None for v in verdicts]
    chosen = answered[best(scores)]
    _report(report, "best_of_n", [*(a for a in answers if a is not chosen), *verdicts])
    return replayed(chosen, launch), Decision("best_of_n", "best")


def judge_prompt(question: str, answer: str) -> str:
    """What the judge is asked of one answer (its user message)."""
    return f"Request:\n{question}\n\nAnswer:\n{answer}"


def score(verdict: str) -> float | None:
    """The first number in the judge's reply; None when it gave none."""
    found = _NUMBER.search(verdict)
    return float(found.group()) if found else None


def best(scores: Sequence[float | None]) -> int:
    """The index of the highest score, the earliest on a tie; unscored answers last."""
    ranked = [-math.inf if s is None else s for s in scores]
    return ranked.index(max(ranked))


def _question(request: GenerationRequest) -> str:
    """The request as the judge reads it: the prompt, or the chat's messages."""
    if request.prompt is not None:
        return request.prompt
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages or ())


def _judging(launch: Launch, question: str, answer: str) -> Launch:
    messages = (Message("system", JUDGE_SYSTEM), Message("user", judge_prompt(question, answer)))
    request = GenerationRequest(messages=messages, max_tokens=8, temperature=0.0, stream=False)
    return Launch(
        launch.engines,
        request,
        "judge",
        deadline=launch.deadline,
        worked=launch.worked,
        tracer=launch.tracer,
    )


# -- members ------------------------------------------------------------------------------


async def _buffered(launch: Launch, target: Target, role: str) -> _Answer:
    """A member's whole answer; a failure (or a field it cannot honour) is its outcome."""
    answer = _Answer(role, target, datetime.now(UTC), time.perf_counter())
    try:
        answer.generation = await start_generation(launch, target)
        answer.chunks = tuple([chunk async for chunk in answer.generation.chunks()])
    except (EngineError, Unhonoured, WrongTask) as error:
        answer.error = error
    answer.ended = time.perf_counter()
    return answer


def _report(report: Report, kind: str, answers: Sequence[_Answer]) -> None:
    for answer in answers:
        report(answer.call(kind))


def _first_error(answers: Sequence[_Answer]) -> EngineError | Unhonoured | WrongTask:
    """What to answer when no member did: the first member's own failure."""
    error = answers[0].error
    assert error is not None  # only called when every member failed
    return error


def replayed(answer: _Answer, launch: Launch, *, strip_logprobs: bool = False) -> Generation:
    """A buffered answer as a generation again, restored (un-redacted) as it is replayed;
    ``strip_logprobs`` drops logprobs the client did not ask for."""
    source = answer.generation
    assert source is not None  # only answers that started are replayed
    chunks = [without_logprobs(c) if strip_logprobs else c for c in answer.chunks]
    return Generation(
        id=source.id,
        created=source.created,
        target=source.target,
        first=chunks[0],
        rest=_replay(chunks[1:]),
        first_token_at=time.perf_counter(),
        restorer=launch.restorer,
    )


async def _replay(chunks: Sequence[Chunk]) -> AsyncGenerator[Chunk, None]:
    for chunk in chunks:
        yield chunk


def without_logprobs(chunk: Chunk) -> Chunk:
    """The chunk with its choices' logprobs set to null (a relayed chunk or completion)."""
    if chunk.openai is None:
        return chunk
    choices = [_choice_without_logprobs(c) for c in chunk.openai.get("choices") or ()]
    return replace(chunk, openai={**chunk.openai, "choices": choices})


def _choice_without_logprobs(choice: Mapping[str, Any]) -> dict[str, Any]:
    return {**choice, "logprobs": None} if "logprobs" in choice else dict(choice)
