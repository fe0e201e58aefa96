"""One API request's passage through the guard, and its row in the request log."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from modelyard.engines import EngineError
from modelyard.guard.auth import principal_of
from modelyard.guard.gate import Admission, Refusal, RequestShape
from modelyard.guard.keyring import Principal
from modelyard.observe.cost import cost_of
from modelyard.observe.requestlog import RequestRecord
from modelyard.routing import ModelNotRoutable, Target, route_of
from modelyard.services import Services, services_of
from modelyard.serving.errors import APIError
from modelyard.serving.generation import Generation

REQUEST_ID_HEADER = "x-modelyard-request-id"
CLIENT_CLOSED_REQUEST = 499  # nginx's "client closed request": nobody reads it, the log does.
GUARDED_ERRORS = (Refusal, APIError, EngineError, ModelNotRoutable)


@dataclass
class Exchange:
    services: Services
    principal: Principal
    endpoint: str
    model: str
    id: str = field(default_factory=lambda: f"req_{secrets.token_hex(12)}")
    started: float = field(default_factory=time.perf_counter)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    admission: Admission | None = None
    target: Target | None = None
    finished: bool = False
    found: tuple[dict[str, int], list[str]] = field(default_factory=lambda: ({}, []))

    @classmethod
    def begin(cls, request: Request, endpoint: str, model: str) -> Exchange:
        exchange = cls(services_of(request), principal_of(request), endpoint, model)
        request.state.request_id = exchange.id
        return exchange

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

    def headers(self) -> dict[str, str]:
        headers = {REQUEST_ID_HEADER: self.id}
        if self.admission is not None:
            headers.update(self.admission.headers)
        if self.target is not None:
            v = self.target.version
            headers["x-modelyard-version"] = f"{v.model}@{v.number}"
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
        """Charge what was used and queue the log row; runs once per request."""
        if self.finished:
            return
        self.finished = True
        usage = generation.usage if generation is not None else None
        prompt = usage.prompt_tokens if usage else (prompt_tokens or 0)
        completion = usage.completion_tokens if usage else 0
        cost = 0.0
        if self.target is not None:
            cost = cost_of(self.target.version.parameters, prompt, completion)
        admission = self.admission
        if admission is not None and (prompt or completion or cost):
            self.services.guard.gate.settle_soon(admission, prompt + completion, cost)
        ttft = None
        if generation is not None and generation.first_token_at:
            ttft = (generation.first_token_at - self.started) * 1000
        if content is not None and generation is not None:
            content = {**content, "response": "".join(generation.produced)}
        self.services.request_log.submit(
            RequestRecord(
                id=self.id,
                at=self.at,
                key_id=self.principal.key_id,
                endpoint=self.endpoint,
                route=self.route,
                version=generation.version_name if generation is not None else _version(self),
                status=status,
                error_code=error_code,
                latency_ms=(time.perf_counter() - self.started) * 1000,
                ttft_ms=ttft,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost=cost,
                streamed=streamed,
                pii=dict(admission.pii if admission else self.found[0]),
                injection=list(admission.injection if admission else self.found[1]),
                content=content,
            )
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


def _version(exchange: Exchange) -> str | None:
    if exchange.target is None:
        return None
    v = exchange.target.version
    return f"{v.model}@{v.number}"


def _status_of(error: Exception) -> tuple[int, str | None]:
    if isinstance(error, Refusal | APIError):
        return error.status, error.code
    if isinstance(error, EngineError):
        return error.status, error.code
    return 404, "model_not_found"
