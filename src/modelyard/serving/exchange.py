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

from modelyard.engines import GenerationRequest
from modelyard.errors import ModelyardError
from modelyard.guard.auth import principal_of
from modelyard.guard.gate import Admission, Refusal, RequestShape
from modelyard.guard.keyring import Principal
from modelyard.observe.accounting import Outcome
from modelyard.observe.tracking import RequestState, tracked_of
from modelyard.routing import Target, route_of
from modelyard.routing.generation import Generation, Launch
from modelyard.routing.shadow import Mirrored
from modelyard.routing.table import Plan
from modelyard.services import Services, services_of

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
    forwarded: GenerationRequest | None = None
    engine_started: float | None = None
    streaming: bool = False  # its answer is a stream (whose response ends the request)
    found: tuple[dict[str, int], list[str]] = field(default_factory=lambda: ({}, []))

    @classmethod
    def begin(
        cls, request: Request, endpoint: str, model: str, user: str | None = None
    ) -> Exchange:
        tracked = tracked_of(request)
        tracked.route = route_of(model)
        services = services_of(request)
        exchange = cls(services, tracked, principal_of(request), endpoint, model, user)
        exchange.request_headers = request.headers
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
        self, target: Target, fallback_from: str | None, skipped: Sequence[str] = ()
    ) -> None:
        """The target that answered (a fallback when ``fallback_from`` names a failed one);
        ``skipped`` says which targets could not honour the request, and why."""
        for reason in skipped:
            log.info("request %s: skipped %s", self.id, reason)
        self.target = target
        self.fallback_from = fallback_from
        self.tracked.routed_headers = self._routing_headers()
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
        self.services.accounting.record(
            self._outcome(status, error_code, generation, content, prompt_tokens, streamed)
        )
        if generation is not None:  # the primary answered (or began to): mirror it
            self._mirror(content)

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

    def _mirror_outcome(self, mirror: Mirrored, asked: dict[str, Any] | None) -> Outcome:
        """A shadow copy's row: never charged to the client nor counted in its metrics."""
        content = asked
        if content is not None and mirror.response is not None:
            content = {**content, "response": mirror.response}
        usage = mirror.usage
        return Outcome(
            id=f"{self.id}.shadow{mirror.index}",
            at=mirror.at,
            key_id=self.principal.key_id,
            endpoint=self.endpoint,
            route=self.route,
            status=mirror.status,
            error_code=mirror.error_code,
            latency_s=mirror.latency_s,
            version=mirror.target.name,
            parameters=mirror.target.version.parameters,
            ttft_s=mirror.ttft_s,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            content=content,
            user=self.user,
            variant="shadow",
            counted="not_counted",
        )

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
