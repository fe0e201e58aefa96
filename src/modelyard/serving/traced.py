"""A request's spans when tracing is on (``observe.tracing``, docs/observe.md#traces).

``Exchange.begin`` makes a ``TracedExchange`` instead of an ``Exchange`` when the app has a
tracer: only then is this module imported, and OpenTelemetry with it. A request's spans,
each the child of the one above it:

    chat {model}             SERVER    the request, from its arrival to its last byte
      guard                  INTERNAL  route permission, limits, budgets, PII, injection
      routing                INTERNAL  the plan, the response cache, the target that started
        chat {engine model}  CLIENT    one per target started (a fallback's too), until its
                                       generation ends; INTERNAL for an in-process engine
          POST               CLIENT    a remote engine's HTTP request, which carries this
                                       span's ``traceparent`` (the server's spans join)

Attributes follow OpenTelemetry's GenAI semantic conventions (``gen_ai.*``) and never hold
a prompt, an answer or a personal value: the guard's findings are counted by type. Spans are
started with explicit parents, never made current: nothing leaks across tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.util.types import AttributeValue

from modelyard.engines import Chunk, Engine, EngineError, GenerationRequest
from modelyard.guard.gate import Admission, Refusal, RequestShape
from modelyard.observe.tracing import Tracing, shown
from modelyard.routing import Target
from modelyard.routing.combine import Decision
from modelyard.routing.generation import Generation, Launch
from modelyard.routing.table import Plan
from modelyard.serving.exchange import CLIENT_CLOSED_REQUEST, Exchange

PROVIDER = "modelyard"
# The request log's endpoint -> GenAI's operation name and the HTTP route.
OPERATIONS = MappingProxyType(
    {
        "chat.completions": ("chat", "/v1/chat/completions"),
        "completions": ("text_completion", "/v1/completions"),
        "responses": ("chat", "/v1/responses"),
        "embeddings": ("embeddings", "/v1/embeddings"),
    }
)
Attributes = dict[str, AttributeValue]


@dataclass
class TracedExchange(Exchange):
    """An exchange that leaves the spans of its request behind."""

    gateway: Span = field(init=False)
    routing: Span | None = field(default=None, init=False)
    arrived_ns: int = field(default=0, init=False)  # the request's arrival, epoch ns

    def __post_init__(self) -> None:
        tracing = self.tracing
        elapsed = time.perf_counter() - self.tracked.started
        self.arrived_ns = time.time_ns() - int(elapsed * 1e9)
        operation, path = OPERATIONS.get(self.endpoint, ("chat", self.endpoint))
        self.gateway = tracing.tracer.start_span(
            f"{operation} {self.model}",
            context=tracing.propagator.extract(self.request_headers),  # a caller's trace
            kind=SpanKind.SERVER,
            start_time=self.arrived_ns,
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": PROVIDER,
                "gen_ai.system": PROVIDER,
                "gen_ai.request.model": self.model,
                "http.request.method": "POST",
                "http.route": path,
                "modelyard.request_id": self.id,
                "modelyard.route": self.route,
            },
        )
        self.tracer = EngineCalls(tracing, self)

    @property
    def tracing(self) -> Tracing:
        tracing = self.services.tracing
        assert tracing is not None  # a TracedExchange is made only when tracing is on
        return tracing

    def child(
        self,
        name: str,
        attributes: Attributes | None = None,
        parent: Span | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Span:
        """A span under ``parent`` (the request's span when None), starting now."""
        return self.tracing.tracer.start_span(
            name,
            context=set_span_in_context(parent or self.gateway),
            kind=kind,
            attributes=attributes,
        )

    async def admit(self, texts: Sequence[str], shape: RequestShape) -> Admission:
        principal = self.principal
        span = self.child(
            "guard",
            {"modelyard.key_id": principal.key_id, "modelyard.key_role": str(principal.role)},
        )
        try:
            admission = await super().admit(texts, shape)
            span.set_attributes(_findings(admission.pii, admission.injection))
            span.set_attribute("modelyard.guard.pii_policy", admission.policy.pii)
            span.set_attribute("modelyard.guard.injection_policy", admission.policy.injection)
            return admission
        except Refusal as refusal:
            span.set_attributes(_findings(refusal.pii, refusal.injection))
            failed(span, refusal.code or str(refusal.status))
            raise
        finally:
            span.end()

    def resolve(self) -> Target:
        """An embedding request's target (its routing span is the lookup)."""
        span = self.child("routing")
        try:
            target = super().resolve()
            span.set_attributes({"modelyard.routing.target": target.name})
            return target
        finally:
            span.end()

    def plan(self) -> Plan:
        self.routing = self.child("routing")
        plan = super().plan()
        self.routing.set_attributes(_planned(plan))
        return plan

    async def cached(self, launch: Launch) -> Generation | None:
        replay = await super().cached(launch)
        routing = self.routing
        if routing is not None and self.cache is not None:
            routing.set_attribute("modelyard.cache", self.cache)
        if replay is not None and routing is not None:  # a hit: no engine runs
            self.routing = None
            routing.end()
        return replay

    def served(
        self,
        target: Target,
        fallback_from: str | None,
        skipped: Sequence[str] = (),
        decision: Decision | None = None,
    ) -> None:
        super().served(target, fallback_from, skipped, decision)
        routing, self.routing = self.routing, None
        if routing is None:
            return
        routing.set_attributes(_served(target, fallback_from, skipped, decision))
        assert isinstance(self.tracer, EngineCalls)
        if self.tracer.tried:
            routing.set_attribute("modelyard.routing.tried", self.tracer.tried)
        routing.end()

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
        ended = self.tracked.logged
        super().finish(
            status,
            error_code,
            generation=generation,
            content=content,
            prompt_tokens=prompt_tokens,
            streamed=streamed,
        )
        if ended:  # finished before: its spans have ended
            return
        routing, self.routing = self.routing, None
        if routing is not None:  # no target started
            failed(routing, error_code or str(status))
            routing.end()
        self._end_gateway(status, error_code, generation, streamed, prompt_tokens)
        self.tracer = None  # its EngineCalls refers back: no cycle left for the collector

    def _end_gateway(
        self,
        status: int,
        error_code: str | None,
        generation: Generation | None,
        streamed: bool,
        prompt_tokens: int | None,
    ) -> None:
        span = self.gateway
        span.set_attributes(_asked(self.forwarded))
        span.set_attribute("http.response.status_code", status)
        if self.target is not None:
            span.set_attribute("modelyard.version", self.target.name)
        if generation is not None:
            span.set_attributes(_answered(generation, self.target))
            self._first_token(span, generation, streamed)
        elif prompt_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens)
        if status >= 400:
            span.set_attribute("error.type", error_code or str(status))
            if status >= 500 and status != CLIENT_CLOSED_REQUEST:  # a server's own failure
                span.set_status(Status(StatusCode.ERROR, error_code or str(status)))
        span.end()

    def _first_token(self, span: Span, generation: Generation, streamed: bool) -> None:
        """Time to first token (when there was one to time: not for an answer an upstream
        sent in one piece), as an attribute and an event at that moment."""
        if not generation.first_token_at or not (streamed or not generation.came_whole):
            return
        ttft = generation.first_token_at - self.tracked.started
        span.set_attribute("gen_ai.server.time_to_first_token", ttft)
        span.add_event("first_token", timestamp=self.arrived_ns + int(ttft * 1e9))


class EngineCalls:
    """The spans of one request's engine calls (``routing.generation.CallTracer``): a
    span per call, and for a remote engine one for its HTTP request, whose trace context
    the request carries."""

    def __init__(self, tracing: Tracing, exchange: TracedExchange) -> None:
        self._tracing = tracing
        self._exchange = exchange
        self.tried: list[str] = []  # the targets started, in order

    async def generate(
        self, engine: Engine, target: Target, request: GenerationRequest
    ) -> AsyncGenerator[Chunk, None]:
        self.tried.append(target.name)
        exchange = self._exchange
        span = exchange.child(
            f"{_operation(request)} {_engine_model(target)}",
            _engine_asked(engine, target, request),
            exchange.routing,
            SpanKind.CLIENT if engine.remote else SpanKind.INTERNAL,  # GenAI's conventions
        )
        http = self._http_span(target, request, span) if engine.remote else None
        if http is not None:
            request = replace(request, trace_context=self._context_of(http))
        spans = (span, http) if http is not None else (span,)
        answer = _Answer()
        try:
            async with aclosing(engine.generate(request)) as stream:
                async for chunk in stream:
                    answer.seen(chunk, span)
                    yield chunk
        except EngineError as error:
            for each in spans:
                failed(each, error.code)
            raise
        except asyncio.CancelledError:  # a deadline, or the client left
            for each in spans:
                failed(each, "cancelled")
            raise
        finally:
            span.set_attributes(answer.attributes())
            for each in reversed(spans):
                each.end()

    def _http_span(self, target: Target, request: GenerationRequest, parent: Span) -> Span:
        url = urlsplit(target.version.artifact_uri.rstrip("/"))
        path = url.path + ("/chat/completions" if request.messages is not None else "/completions")
        return self._tracing.tracer.start_span(
            "POST",
            context=set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "url.full": shown(url._replace(path=path).geturl()),
                "server.address": url.hostname or "",
                "server.port": url.port or (443 if url.scheme == "https" else 80),
            },
        )

    def _context_of(self, span: Span) -> Mapping[str, str]:
        carrier: dict[str, str] = {}
        self._tracing.propagator.inject(carrier, context=set_span_in_context(span))
        return carrier


@dataclass
class _Answer:
    """What an engine call answered, as its span says it (never the text)."""

    chunks: int = 0
    finish: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    id: str | None = None
    model: str | None = None

    def seen(self, chunk: Chunk, span: Span) -> None:
        if not self.chunks:
            span.add_event("first_token")
        self.chunks += 1
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason
        if chunk.usage is not None:
            self.input_tokens = chunk.usage.prompt_tokens
            self.output_tokens = chunk.usage.completion_tokens
        relayed = chunk.openai
        if relayed is not None and self.id is None:  # the server's own id and model
            self.id, self.model = relayed.get("id"), relayed.get("model")

    def attributes(self) -> Attributes:
        out: Attributes = {"modelyard.engine.chunks": self.chunks}
        if self.finish is not None:
            out["gen_ai.response.finish_reasons"] = [self.finish]
        if self.input_tokens is not None and self.output_tokens is not None:
            out["gen_ai.usage.input_tokens"] = self.input_tokens
            out["gen_ai.usage.output_tokens"] = self.output_tokens
        if isinstance(self.id, str):
            out["gen_ai.response.id"] = self.id
        if isinstance(self.model, str):
            out["gen_ai.response.model"] = self.model
        return out


def failed(span: Span, error_type: str) -> None:
    """``span`` ended in an error of this type (an error code, never a message)."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))


def _findings(pii: Mapping[str, int], injection: Sequence[str]) -> Attributes:
    """What the guard's scans found: counts and types, never the values."""
    out: Attributes = {
        "modelyard.guard.pii_found": sum(pii.values()),
        "modelyard.guard.injection_flags": len(injection),
    }
    if pii:
        out["modelyard.guard.pii_entities"] = sorted(pii)
    if injection:
        out["modelyard.guard.injection_rules"] = sorted(injection)
    return out


def _planned(plan: Plan) -> Attributes:
    out: Attributes = {"modelyard.routing.target": plan.primary.name}
    if plan.primary.variant is not None:
        out["modelyard.routing.variant"] = plan.primary.variant
    if plan.fallbacks:
        out["modelyard.routing.fallbacks"] = [f.target.name for f in plan.fallbacks]
    if plan.shadows:
        out["modelyard.routing.shadows"] = [t.name for t in plan.shadows]
    if plan.combination is not None:
        out["modelyard.routing.combination"] = plan.combination.policy.kind
    return out


def _served(
    target: Target, fallback_from: str | None, skipped: Sequence[str], decision: Decision | None
) -> Attributes:
    out: Attributes = {"modelyard.routing.served_by": target.name}
    if fallback_from is not None:
        out["modelyard.routing.fallback_from"] = fallback_from
    if skipped:
        out["modelyard.routing.skipped"] = list(skipped)  # "name: why" (a field's name)
    if decision is not None:
        out["modelyard.routing.decision"] = decision.label
    return out


def _asked(request: GenerationRequest | None) -> Attributes:
    """The sampling settings a request gave (GenAI's ``gen_ai.request.*``)."""
    if request is None:
        return {}
    given: dict[str, AttributeValue | None] = {
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.request.temperature": request.temperature,
        "gen_ai.request.top_p": request.top_p,
        "gen_ai.request.seed": request.seed,
    }
    out: Attributes = {k: v for k, v in given.items() if v is not None}
    out["modelyard.stream"] = request.stream
    return out


def _answered(generation: Generation, target: Target | None) -> Attributes:
    out: Attributes = {"gen_ai.response.id": generation.id}
    out["gen_ai.response.model"] = (target or generation.target).name
    if generation.finish_reason is not None:
        out["gen_ai.response.finish_reasons"] = [generation.finish_reason]
    usage = generation.usage
    if usage is not None:
        out["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        out["gen_ai.usage.output_tokens"] = usage.completion_tokens
    return out


def _operation(request: GenerationRequest) -> str:
    return "chat" if request.messages is not None else "text_completion"


def _engine_model(target: Target) -> str:
    """The model an engine is asked for: a remote server's name for it, else the version."""
    named = target.version.parameters.get("model")
    return named if isinstance(named, str) and named else target.name


def _engine_asked(engine: Engine, target: Target, request: GenerationRequest) -> Attributes:
    return {
        "gen_ai.operation.name": _operation(request),
        "gen_ai.provider.name": engine.kind,
        "gen_ai.system": engine.kind,
        "gen_ai.request.model": _engine_model(target),
        "modelyard.version": target.name,
        "modelyard.engine.kind": engine.kind,
        **_asked(request),
    }
