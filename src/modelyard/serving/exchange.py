"""One API request's passage through the guard and routing, and the outcome it leaves
behind for accounting (``observe.accounting``): its row, metrics, charges, its mirrors."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from modelyard.engines import GenerationRequest, Usage
from modelyard.errors import ModelyardError
from modelyard.guard.auth import principal_of
from modelyard.guard.gate import Admission, Refusal, RequestShape
from modelyard.guard.keyring import Principal
from modelyard.observe.accounting import Charge, Outcome
from modelyard.observe.cost import cost_of
from modelyard.observe.tracking import RequestState, tracked_of
from modelyard.routing import Target, route_of
from modelyard.routing.cache import CachedAnswer, Lookup, replayed
from modelyard.routing.combine import Call, Decision
from modelyard.routing.generation import CallTracer, Generation, Launch
from modelyard.routing.shadow import Mirrored
from modelyard.routing.table import Plan
from modelyard.services import Services, services_of
from modelyard.serving.judging import offer_for_judging
from modelyard.serving.messages import logged_content

log = logging.getLogger(__name__)
CLIENT_CLOSED_REQUEST = 499  # nginx's "client closed request": nobody reads it, the log does.


@dataclass
class Exchange:
    services: Services
    tracked: RequestState
    principal: Principal
    endpoint: str
    model: str
    user: str | None = None  # the client's own end-user id (OpenAI's ``user`` field)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    request_headers: Mapping[str, str] = field(default_factory=dict)
    admission: Admission | None = None
    plan_: Plan | None = None
    target: Target | None = None
    fallback_from: str | None = None
    decision: Decision | None = None  # how a combination route chose its answer
    calls: list[Call] = field(default_factory=list)  # its calls whose answers were not returned
    forwarded: GenerationRequest | None = None
    engine_started: float | None = None
    streaming: bool = False  # its answer is a stream (whose response ends the request)
    lookup: Lookup | None = None  # the route's response cache was looked in
    cache: str | None = None  # what the cache did: hit, miss, bypass; None: the route has none
    found: tuple[dict[str, int], list[str]] = field(default_factory=lambda: ({}, []))
    tracer: CallTracer | None = None  # follows its engine calls when tracing is on

    @classmethod
    def begin(
        cls, request: Request, endpoint: str, model: str, user: str | None = None
    ) -> Exchange:
        tracked = tracked_of(request)
        tracked.route = route_of(model)
        services = services_of(request)
        made = cls
        if services.tracing is not None:  # off, tracing costs this check (and Launch.tracer's)
            from modelyard.serving.traced import TracedExchange  # only with tracing on

            made = TracedExchange
        exchange = made(
            services,
            tracked,
            principal_of(request),
            endpoint,
            model,
            user,
            request_headers=request.headers,
        )
        services.meter.start(tracked.id)
        tracked.metered = True
        return exchange

    @property
    def id(self) -> str:
        return self.tracked.id

    @property
    def route(self) -> str:
        return route_of(self.model)

    def work(self, units: float) -> None:
        """Work this request did (tokens), which its share of CPU time follows."""
        self.services.meter.work(self.id, units)

    async def admit(self, texts: Sequence[str], shape: RequestShape) -> Admission:
        gate = self.services.guard.gate
        gate.check_shape(shape)
        self.admission = await gate.admit(self.principal, self.route, texts)
        return self.admission

    def resolve(self) -> Target:
        self.target = self.services.routing.resolve(self.model)
        return self.target

    def plan(self) -> Plan:
        """Where this request goes under its route's traffic policy."""
        self.plan_ = self.services.routing.plan(self.model, self.user, self.request_headers)
        self.user = self.plan_.user
        self.target = self.plan_.primary
        self.tracked.routed_headers = self._routing_headers()
        return self.plan_

    def served(
        self,
        target: Target,
        fallback_from: str | None,
        skipped: Sequence[str] = (),
        decision: Decision | None = None,
    ) -> None:
        """The target that answered (a fallback when ``fallback_from`` names a failed one);
        ``skipped`` says which targets could not honour the request, and why; ``decision``
        how a combination route chose the answer."""
        for reason in skipped:
            log.info("request %s: skipped %s", self.id, reason)
        self.target = target
        self.fallback_from = fallback_from
        self.decision = decision
        if decision is not None:
            self.services.metrics.combined.labels(self.route, decision.kind, decision.reason).inc()
        self.tracked.routed_headers = self._routing_headers()
        if fallback_from is not None:
            self.services.metrics.fallbacks.labels(self.route, fallback_from).inc()

    @property
    def variant(self) -> str | None:
        if self.decision is not None:
            return self.decision.label  # which model answered, and why
        return self.plan_.primary.variant if self.plan_ is not None else None

    async def cached(self, launch: Launch) -> Generation | None:
        """The answer of the route's response cache, as a generation; None: ask the engine.
        Looked up after the guard and the plan, with the request as forwarded (redacted)."""
        plan, forwarded = self.plan_, self.forwarded
        policy = self.services.routing.policy(self.route)
        if policy is None or policy.cache is None or plan is None or forwarded is None:
            return None
        cache = self.services.cache
        self.lookup = await cache.lookup(
            policy.cache, plan.primary, forwarded, self.principal.key_id
        )
        self.cache = "bypass" if self.lookup is None else self.lookup.result
        self.tracked.routed_headers = self._routing_headers()
        if self.lookup is None or self.lookup.answer is None:
            return None
        return replayed(self.lookup.answer, plan.primary, launch)

    def _remember(self, status: int, generation: Generation | None) -> None:
        """Keep a miss's complete answer of plain text, from the version looked up."""
        lookup = self.lookup
        if lookup is None or lookup.answer is not None or generation is None or status != 200:
            return
        finish = generation.finish_reason
        if generation.target.name != lookup.version or generation.tool_calls or finish is None:
            return
        usage = generation.usage
        self.services.cache.remember(
            lookup,
            CachedAnswer(
                "".join(generation.produced),
                finish,
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
            ),
        )

    def engine_starts(self) -> None:
        self.engine_started = time.perf_counter()

    def engine_answered(self, until: float | None = None) -> None:
        """Count the engine's time so far (to its first token, or to its end) out of the
        overhead the response's header reports."""
        if self.engine_started is not None:
            self.tracked.engine_s = (until or time.perf_counter()) - self.engine_started

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.admission is not None:
            headers.update(self.admission.headers)
        headers.update(self._routing_headers())
        return headers

    def _routing_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.target is not None:
            headers["x-modelyard-version"] = self.target.name
        if self.variant is not None:
            headers["x-modelyard-variant"] = self.variant
        if self.fallback_from is not None:
            headers["x-modelyard-fallback-from"] = self.fallback_from
        if self.cache in ("hit", "miss"):
            headers["x-modelyard-cache"] = self.cache
        return headers

    def failed(self, error: ModelyardError) -> None:
        """Log a request that ended in an error before any output."""
        if isinstance(error, Refusal):
            self.found = (error.pii, error.injection)
        self.finish(error.status, error.code)

    def finish(
        self,
        status: int,
        error_code: str | None = None,
        *,
        generation: Generation | None = None,
        content: dict[str, Any] | None = None,
        prompt_tokens: int | None = None,
        streamed: bool = False,
    ) -> None:
        """Record how the request ended (once per request), then mirror it to shadows."""
        if self.tracked.logged:
            return
        self.tracked.logged = True
        self.tracked.metered = False
        if content is not None and generation is not None:
            content = {
                **content,
                "response": "".join(generation.produced),
                "finish_reason": generation.finish_reason,
            }
            if self.decision is not None:  # how a combination chose it (its confidence)
                content["combination"] = self.decision.logged()
        self.services.accounting.record(
            self._outcome(status, error_code, generation, content, prompt_tokens, streamed)
        )
        self._remember(status, generation)
        if generation is not None and self.cache != "hit":  # the primary answered: mirror it
            self._mirror(content)
        if generation is not None and status == 200:
            self._offer_for_judging(generation)
        if self.decision is not None:
            self._count_cascade(self.decision, status, generation)

    def _outcome(
        self,
        status: int,
        error_code: str | None,
        generation: Generation | None,
        content: dict[str, Any] | None,
        prompt_tokens: int | None,
        streamed: bool,
    ) -> Outcome:
        now = time.perf_counter()
        usage = generation.usage if generation is not None else None
        ttft = None
        # No first token to time when a non-streamed answer came in one piece (an upstream
        # asked for it non-streamed): its time is the latency's.
        timed = generation is not None and (streamed or not generation.came_whole)
        if generation is not None and generation.first_token_at and timed:
            ttft = generation.first_token_at - self.tracked.started
        admission = self.admission
        return Outcome(
            id=self.id,
            at=self.at,
            key_id=self.principal.key_id,
            endpoint=self.endpoint,
            route=self.route,
            status=status,
            error_code=error_code,
            latency_s=now - self.tracked.started,
            version=None if self.target is None else self.target.name,
            parameters=None if self.target is None else self.target.version.parameters,
            ttft_s=ttft,
            engine_s=0.0 if self.engine_started is None else now - self.engine_started,
            prompt_tokens=usage.prompt_tokens if usage else (prompt_tokens or 0),
            completion_tokens=usage.completion_tokens if usage else 0,
            streamed=streamed,
            pii=admission.pii if admission else self.found[0],
            injection=admission.injection if admission else self.found[1],
            content=content,
            user=self.user,
            variant=self.variant,
            fallback_from=self.fallback_from,
            finish_reason=generation.finish_reason if generation is not None else None,
            response_format=self._format_asked(),
            tool_calls=generation.tool_calls if generation is not None else (),
            metered=True,
            charge=None if admission is None else self._charge,
            cache=self.cache,
        )

    def _format_asked(self) -> Mapping[str, Any] | None:
        """The ``response_format`` the request asked for (a plain ``text`` one too)."""
        forwarded = self.forwarded
        if forwarded is None:
            return None
        asked = forwarded.response_format or forwarded.openai.get("response_format")
        return asked if isinstance(asked, Mapping) else None

    def _charge(self, tokens: int, cost: float) -> None:
        if self.admission is not None:
            self.services.guard.gate.settle_soon(self.admission, tokens, cost)

    def _mirror(self, content: dict[str, Any] | None) -> None:
        """Send this request's copies to the plan's shadows, now that it has answered."""
        plan, forwarded = self.plan_, self.forwarded
        if plan is None or forwarded is None or not plan.shadows:
            return
        services = self.services
        asked = None if content is None else {k: v for k, v in content.items() if k != "response"}
        counter = services.metrics.shadow_requests

        def logged(mirror: Mirrored) -> None:
            services.accounting.record(self._mirror_outcome(mirror, asked))

        services.shadows.mirror(
            plan,
            Launch(services.engines, forwarded, "shadow"),
            services.settings.request_timeout_s,
            on_done=logged,
            on_sent=lambda sent: counter.labels(self.route, "sent" if sent else "dropped").inc(),
        )

    def _offer_for_judging(self, generation: Generation) -> None:
        """A draw: the route's live judge may score this answer later (never waits)."""
        forwarded, target = self.forwarded, self.target
        if forwarded is None or target is None:
            return
        offer_for_judging(
            self.services,
            forwarded,
            "".join(generation.produced),
            request_id=self.id,
            key_id=self.principal.key_id,
            user=self.user,
            route=self.route,
            version=target.name,
            variant=self.variant,
        )

    def call_made(self, call: Call) -> None:
        """Log (and charge) a combination's model call whose answer is not returned, as
        soon as it is made: a failure that follows it does not lose it."""
        self.calls.append(call)
        asked = None if self.forwarded is None else logged_content(self.forwarded)
        outcome = self._call_outcome(len(self.calls) - 1, call, asked)
        self.services.accounting.record(outcome)

    def _count_cascade(
        self, decision: Decision, status: int, generation: Generation | None
    ) -> None:
        """Count what a cascade spent against what the large model alone would have."""
        usage = None if generation is None else generation.usage
        if decision.large is None or status != 200 or usage is None or self.target is None:
            return
        answer_cost = cost_of(self.target.version.parameters, *_tokens(usage))
        spent = answer_cost + sum(
            cost_of(c.target.version.parameters, *_tokens(c.usage))
            for c in self.calls
            if c.usage is not None
        )
        large_only = answer_cost
        if decision.reason == "confident":  # the large model's price for the same tokens
            large_only = cost_of(decision.large.version.parameters, *_tokens(usage))
        counter = self.services.metrics.cascade_cost
        counter.labels(self.route, "cascade").inc(spent)
        counter.labels(self.route, "large_only").inc(large_only)

    def _call_outcome(self, index: int, call: Call, asked: dict[str, Any] | None) -> Outcome:
        """A combination member's row (``<id>.<role><n>``): charged to the client, not
        counted in the request metrics (the request is, once)."""
        charge = None if self.admission is None else self._charge
        variant = f"{call.kind}.{call.role}"
        return self._side_outcome(f"{call.role}{index}", call, asked, variant, None, charge)

    def _mirror_outcome(self, mirror: Mirrored, asked: dict[str, Any] | None) -> Outcome:
        """A shadow copy's row: never charged to the client nor counted in its metrics."""
        suffix = f"shadow{mirror.index}"
        return self._side_outcome(suffix, mirror, asked, "shadow", mirror.ttft_s, None)

    def _side_outcome(
        self,
        suffix: str,
        side: Call | Mirrored,
        asked: dict[str, Any] | None,
        variant: str,
        ttft_s: float | None,
        charge: Charge | None,
    ) -> Outcome:
        """The row of a model call beside the one answered (``<id>.<suffix>``), with what
        it answered; not counted in the request metrics."""
        content = asked
        if content is not None and side.response is not None:
            content = {**content, "response": side.response}
        usage = side.usage
        return Outcome(
            id=f"{self.id}.{suffix}",
            at=side.at,
            key_id=self.principal.key_id,
            endpoint=self.endpoint,
            route=self.route,
            status=side.status,
            error_code=side.error_code,
            latency_s=side.latency_s,
            version=side.target.name,
            parameters=side.target.version.parameters,
            ttft_s=ttft_s,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            content=content,
            user=self.user,
            variant=variant,
            charge=charge,
            counted="not_counted",
        )

    async def logged(
        self, events: AsyncIterator[bytes], generation: Generation, content: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """Pass a response stream through, logging how it ended (done, error, client gone).

        A stream that ends well is logged before its last event is sent: a client that
        has the whole answer finds its row in the log (journaled), whatever happens to
        this process next."""
        completed = False
        try:
            async for event in events:
                if event.startswith(LAST_EVENTS):
                    completed = True
                    self._ended(generation, content, completed=True)
                yield event
            completed = True
        finally:
            self._ended(generation, content, completed=completed)

    def _ended(self, generation: Generation, content: dict[str, Any], *, completed: bool) -> None:
        """Log how a stream ended (once: ``finish`` ignores a second call)."""
        error = generation.error
        code: str | None
        if error is not None:
            status, code = error.status, error.code
        elif completed:
            status, code = 200, None
        else:
            status, code = CLIENT_CLOSED_REQUEST, "client_disconnected"
        self.finish(status, code, generation=generation, content=content, streamed=True)


# The first bytes of a stream's last event when it ends well (chat and completions; the
# Responses API), or with an error event the client reads as the end.
LAST_EVENTS = (
    b"data: [DONE]",
    b"event: response.completed\n",
    b"event: response.incomplete\n",
    b"event: response.failed\n",
)


def _tokens(usage: Usage) -> tuple[int, int]:
    return usage.prompt_tokens, usage.completion_tokens
