"""Live judging's two touches of the serving path: a cheap draw that offers an answered
request to the route's live judge (``offer_for_judging``), and the judge call itself
(``judge_call``), routed as any request is and logged as judge traffic: its own row
(``<id>.judge``, variant ``live_judge``), neither charged to the client nor counted in the
request metrics, and never sampled itself (it does not pass through an ``Exchange``)."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

from modelyard.engines import EngineError, GenerationRequest, Message
from modelyard.observe.accounting import Outcome
from modelyard.observe.quality.worker import JudgeCall, Sample, Verdict
from modelyard.routing.generation import Launch, Unhonoured, WrongTask, collect, start_generation
from modelyard.routing.table import ModelNotRoutable, Target
from modelyard.services import Services

JUDGE_VARIANT = "live_judge"
JUDGE_MAX_TOKENS = 8  # a number is all it is asked for (as eval judges are)


def offer_for_judging(
    services: Services,
    request: GenerationRequest,
    answer: str,
    *,
    request_id: str,
    key_id: str,
    user: str | None,
    route: str,
    version: str,
    variant: str | None,
) -> bool:
    """Offer an answered request to its route's live judge when the draw picks it; never
    waits (a queue put or nothing)."""
    policy = services.routing.policy(route)
    setting = None if policy is None else policy.live_judge
    if setting is None or random.random() >= setting.share:
        return False
    sample = Sample(
        request_id=request_id,
        key_id=key_id,
        user=user,
        route=route,
        version=version,
        variant=variant,
        question=question_of(request),
        answer=answer,
        setting=setting,
    )
    return services.live_judge.offer(sample)


def question_of(request: GenerationRequest) -> str:
    """The request as the judge reads it (as forwarded: redacted when the route redacts)."""
    if request.prompt is not None:
        return request.prompt
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages or ())


def judge_call(services: Services) -> JudgeCall:
    """How the live judge asks a judge: through routing to the judge's engine, logged."""

    async def call(sample: Sample, prompt: str) -> Verdict:
        at, started = datetime.now(UTC), time.perf_counter()
        try:
            target = services.routing.resolve(sample.setting.judge)
        except ModelNotRoutable as unroutable:
            return Verdict(None, str(unroutable), None, 0.0, time.perf_counter() - started)
        request = GenerationRequest(
            messages=(Message("user", prompt),),
            max_tokens=JUDGE_MAX_TOKENS,
            temperature=0.0,
            stream=False,
        )
        outcome = Outcome(
            id=sample.judge_request_id,
            at=at,
            key_id=sample.key_id,
            endpoint="chat.completions",
            route=target.model,
            status=200,
            error_code=None,
            latency_s=0.0,
            version=target.name,
            parameters=target.version.parameters,
            content={"messages": [{"role": "user", "content": prompt}]},
            user=sample.user,
            variant=JUDGE_VARIANT,
            counted="not_counted",  # judge traffic: not the judge route's own requests
        )
        reply, error = await _asked(services, request, target, outcome)
        outcome.latency_s = time.perf_counter() - started
        record = services.accounting.record(outcome)  # no charge: nobody asked for it
        return Verdict(reply, error, target.name, record.cost, outcome.latency_s)

    return call


async def _asked(
    services: Services, request: GenerationRequest, target: Target, outcome: Outcome
) -> tuple[str | None, str | None]:
    """The judge's reply (or why there is none), noted on its ``outcome``."""
    try:
        async with asyncio.timeout(services.settings.request_timeout_s):
            generation = await start_generation(Launch(services.engines, request, "judge"), target)
            collected = await collect(generation)
    except (EngineError, Unhonoured, WrongTask) as failure:
        outcome.status, outcome.error_code = failure.status, failure.code
        return None, str(failure)
    except TimeoutError:
        outcome.status, outcome.error_code = 504, "request_timeout"
        return None, "the judge did not answer in time"
    outcome.prompt_tokens = collected.usage.prompt_tokens
    outcome.completion_tokens = collected.usage.completion_tokens
    outcome.finish_reason = collected.finish_reason
    if outcome.content is not None:
        outcome.content["response"] = collected.text
    return collected.text, None
