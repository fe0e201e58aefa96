"""One API request's passage through the guard, and what it leaves behind: its row in
the request log, its metrics, its charges."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from starlette.datastructures import State
from starlette.requests import Request

from modelyard.engines import EngineError, GenerationRequest
from modelyard.guard.auth import principal_of
from modelyard.guard.gate import Admission, Refusal, RequestShape
from modelyard.guard.keyring import Principal
from modelyard.observe.cost import cost_of
from modelyard.observe.metrics import Served
from modelyard.observe.requestlog import RequestRecord
from modelyard.routing import ModelNotRoutable, Target, route_of
from modelyard.routing.table import Plan
from modelyard.services import Services, services_of
from modelyard.serving.errors import APIError
from modelyard.serving.generation import Generation
from modelyard.serving.mirror import Mirror, mirrored

CLIENT_CLOSED_REQUEST = 499  # nginx's "client closed request": nobody reads it, the log does.
GUARDED_ERRORS = (Refusal, APIError, EngineError, ModelNotRoutable)
OPERATIONS = MappingProxyType({"chat.completions": "chat", "completions": "text_completion"})


@dataclass
class Exchange:
    services: Services
    state: State
    principal: Principal
    endpoint: str
    model: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    admission: Admission | None = None
    target: Target | None = None
    engine_started: float | None = None
    user: str | None = None  # the client's own end-user id (OpenAI's ``user`` field)
    found: tuple[dict[str, int], list[str]] = field(default_factory=lambda: ({}, []))
    plan_: Plan | None = None
    fallback_from: str | None = None
    forwarded: GenerationRequest | None = None
    request_headers: Mapping[str, str] = field(default_factory=dict)
    id: str = field(init=False)  # the request's id (set by the tracking middleware)

    def __post_init__(self) -> None:
        self.id = self.state.request_id

    @classmethod
    def begin(
        cls, request: Request, endpoint: str, model: str, user: str | None = None
    ) -> Exchange:
        request.state.route = route_of(model)
        exchange = cls(services_of(request), request.state, principal_of(request), endpoint, model)
        exchange.user = user
        exchange.request_headers = request.headers
        exchange.services.meter.start(exchange.id)
        request.state.metered = True
        return exchange

    def work(self, units: float) -> None:
        """Work this request did (tokens), which its share of CPU time follows."""
        self.services.meter.work(self.id, units)

    @property
    def route(self) -> str:
        return route_of(self.model)

    async def admit(self, texts: Sequence[str], shape: RequestShape) -> Admission:
        gate = self.services.guard.gate
        gate.check_shape(shape)
        self.admission = await gate.admit(self.principal, self.route, texts)
        return self.admission

    def resolve(self) -> Target:
        self.target = self.services.routing.resolve(self.model)
        return self.target

    def plan(self) -> Plan:
        """Where this request goes under its route's traffic policy; the end user (the
        body's ``user``, else the policy's sticky header) keeps a user on one variant."""
        table = self.services.routing
        policy = table.policy(self.model)
        if self.user is None and policy is not None:
            self.user = self.request_headers.get(policy.sticky_header) or None
        self.plan_ = table.plan(self.model, self.user)
        self.target = self.plan_.primary
        self.state.routed_headers = self._routing_headers()
        return self.plan_

    def served(self, target: Target, fallback_from: str | None) -> None:
        """The target that answered (a fallback when ``fallback_from`` names a failed one)."""
        self.target = target
        self.fallback_from = fallback_from
        self.state.routed_headers = self._routing_headers()
        if fallback_from is not None:
            self.services.metrics.fallbacks.labels(self.route, fallback_from).inc()

    @property
    def variant(self) -> str | None:
        return self.plan_.primary.variant if self.plan_ is not None else None

    def engine_starts(self) -> None:
        self.engine_started = time.perf_counter()

    def engine_answered(self, until: float | None = None) -> None:
        """Count the engine's time so far (to its first token, or to its end) out of the
        overhead the response's header reports."""
        if self.engine_started is not None:
            self.state.engine_s = (until or time.perf_counter()) - self.engine_started

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.admission is not None:
            headers.update(self.admission.headers)
        headers.update(self._routing_headers())
        return headers

    def _routing_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.target is not None:
            v = self.target.version
            headers["x-modelyard-version"] = f"{v.model}@{v.number}"
        if self.variant is not None:
            headers["x-modelyard-variant"] = self.variant
        if self.fallback_from is not None:
            headers["x-modelyard-fallback-from"] = self.fallback_from
        return headers

    def failed(self, error: Exception) -> None:
        """Log a request that ended in an error before any output."""
        status, code = _status_of(error)
        if isinstance(error, Refusal):
            self.found = (error.pii, error.injection)
        self.finish(status, code)

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
        """Charge what was used, count it, queue the log row; once per request."""
        if getattr(self.state, "logged", False):
            return
        self.state.logged = True
        now = time.perf_counter()
        started: float = self.state.started
        usage = generation.usage if generation is not None else None
        prompt = usage.prompt_tokens if usage else (prompt_tokens or 0)
        completion = usage.completion_tokens if usage else 0
        self.state.metered = False
        used = self.services.meter.finish(self.id)
        energy = self.services.power.estimate(used.cpu_seconds, used.wall_share_seconds)
        cost = 0.0
        if self.target is not None:
            parameters = self.target.version.parameters
            cost = cost_of(parameters, prompt, completion, used.cpu_seconds)
        admission = self.admission
        if admission is not None and (prompt or completion or cost):
            self.services.guard.gate.settle_soon(admission, prompt + completion, cost)
        ttft = None
        # No first token to time when a non-streamed answer came in one piece (an upstream
        # asked for it non-streamed): its time is the latency's.
        whole = not streamed and generation is not None and generation.first.finish_reason
        if generation is not None and generation.first_token_at and not whole:
            ttft = generation.first_token_at - started
        engine_s = now - self.engine_started if self.engine_started is not None else 0.0
        latency = now - started
        if content is not None and generation is not None:
            content = {**content, "response": "".join(generation.produced)}
        version = _version(self.target)
        pii = dict(admission.pii if admission else self.found[0])
        injection = list(admission.injection if admission else self.found[1])
        self.services.request_log.submit(
            RequestRecord(
                id=self.id,
                at=self.at,
                key_id=self.principal.key_id,
                endpoint=self.endpoint,
                route=self.route,
                version=version,
                status=status,
                error_code=error_code,
                latency_ms=latency * 1000,
                ttft_ms=ttft * 1000 if ttft is not None else None,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost=cost,
                streamed=streamed,
                pii=pii,
                injection=injection,
                content=content,
                overhead_ms=max(latency - engine_s, 0.0) * 1000,
                energy_wh=energy.total_wh,
                carbon_g=energy.carbon_g,
                user=self.user,
                variant=self.variant,
                fallback_from=self.fallback_from,
            )
        )
        if generation is not None:  # the primary answered (or began to): mirror it
            self._mirror(content)
        self.services.metrics.served(
            Served(
                operation=OPERATIONS.get(self.endpoint, "embeddings"),
                route=self.route,
                version=version or "-",
                status=status,
                error_code=error_code,
                duration_s=latency,
                ttft_s=ttft,
                input_tokens=prompt,
                output_tokens=completion,
                cost=cost,
                energy_wh=energy.total_wh,
                pii=pii,
                injection=injection,
            )
        )

    def _mirror(self, content: dict[str, Any] | None) -> None:
        """Send this request's copies to the plan's shadows, now that it has answered."""
        plan, forwarded = self.plan_, self.forwarded
        if plan is None or forwarded is None or not plan.shadows:
            return
        for index, target in enumerate(plan.shadows):
            mirror = Mirror(
                parent_id=self.id,
                index=index,
                key_id=self.principal.key_id,
                endpoint=self.endpoint,
                route=self.route,
                user=self.user,
                target=target,
                request=forwarded,
                content=None
                if content is None
                else {k: v for k, v in content.items() if k != "response"},
            )
            sent = self.services.shadows.submit(mirrored(self.services, mirror))
            self.services.metrics.shadow_requests.labels(
                self.route, "sent" if sent else "dropped"
            ).inc()

    async def logged(
        self, events: AsyncIterator[bytes], generation: Generation, content: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """Pass a response stream through, logging how it ended (done, error, client gone)."""
        completed = False
        try:
            async for event in events:
                yield event
            completed = True
        finally:
            error = generation.error
            code: str | None
            if error is not None:
                status, code = error.status, error.code
            elif completed:
                status, code = 200, None
            else:
                status, code = CLIENT_CLOSED_REQUEST, "client_disconnected"
            self.finish(status, code, generation=generation, content=content, streamed=True)


def _version(target: Target | None) -> str | None:
    if target is None:
        return None
    return f"{target.version.model}@{target.version.number}"


def _status_of(error: Exception) -> tuple[int, str | None]:
    if isinstance(error, Refusal | APIError):
        return error.status, error.code
    if isinstance(error, EngineError):
        return error.status, error.code
    return 404, "model_not_found"
