"""How a request ended, recorded once: its request-log row, its metrics, its budget charge
and its energy. Every path ends here: a served request, one that ended before a handler
served it (an invalid body, a wrong role), and a shadow copy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from modelyard.observe.cost import cost_of
from modelyard.observe.energy import CpuMeter, PowerModel
from modelyard.observe.metrics import Metrics, Served
from modelyard.observe.requestlog import RequestLogWriter, RequestRecord

# The request log's endpoint names -> the operation names of the metrics (OpenTelemetry's;
# a Responses API request is served as a chat).
OPERATIONS = MappingProxyType(
    {
        "chat.completions": "chat",
        "completions": "text_completion",
        "responses": "chat",
        "embeddings": "embeddings",
    }
)
Counted = Literal["served", "unserved", "not_counted"]
Charge = Callable[[int, float], None]  # (tokens, cost) -> charged to the caller's budget


@dataclass(slots=True)  # not frozen: one per request, and a frozen init costs 2x
class Outcome:
    """How one request ended, as its path saw it."""

    id: str
    at: datetime
    key_id: str
    endpoint: str
    route: str
    status: int
    error_code: str | None
    latency_s: float
    version: str | None = None  # the version that served it, ``model@n``
    parameters: Mapping[str, Any] | None = None  # that version's parameters (its price)
    ttft_s: float | None = None
    engine_s: float | None = None  # the engine's share of the latency; None: not measured
    prompt_tokens: int = 0
    completion_tokens: int = 0
    streamed: bool = False
    pii: Mapping[str, int] = field(default_factory=dict)
    injection: Sequence[str] = ()
    content: dict[str, Any] | None = None
    user: str | None = None
    variant: str | None = None
    fallback_from: str | None = None
    finish_reason: str | None = None
    response_format: Mapping[str, Any] | None = None  # as asked; None: none asked
    tool_calls: Sequence[Any] = ()  # choice 0's tool-call deltas, as relayed (``Generation``)
    metered: bool = False  # whether the energy meter follows the request (by its id)
    charge: Charge | None = None  # None: nobody pays for it (a shadow copy)
    counted: Counted = "served"  # how the metrics count it
    cache: str | None = None  # the response cache's result: hit, miss, bypass; None: off


class Accounting:
    """Records outcomes; never waits (the log row is queued for the writer)."""

    def __init__(
        self, request_log: RequestLogWriter, metrics: Metrics, meter: CpuMeter, power: PowerModel
    ) -> None:
        self._log = request_log
        self._metrics = metrics
        self._meter = meter
        self._power = power

    def record(self, outcome: Outcome) -> RequestRecord:
        """Charge what was used, queue the log row and count it."""
        cpu_seconds, energy_wh, carbon_g = 0.0, 0.0, 0.0
        if outcome.metered:
            used = self._meter.finish(outcome.id)
            cpu_seconds = used.cpu_seconds
            energy = self._power.estimate(used.cpu_seconds, used.wall_share_seconds)
            energy_wh, carbon_g = energy.total_wh, energy.carbon_g
        prompt, completion = outcome.prompt_tokens, outcome.completion_tokens
        cost = 0.0
        if outcome.parameters is not None:
            cost = cost_of(outcome.parameters, prompt, completion, cpu_seconds)
        saved = 0.0
        if outcome.cache == "hit":  # no engine ran: its tokens are charged, not its cost
            saved, cost = cost, 0.0
        if outcome.charge is not None and (prompt or completion or cost):
            outcome.charge(prompt + completion, cost)
        record = _record(outcome, cost, energy_wh, carbon_g)
        self._log.submit(record)
        self._count(outcome, record)
        if outcome.cache is not None:
            self._metrics.cache_looked(outcome.route, outcome.cache, saved)
        return record

    def _count(self, outcome: Outcome, record: RequestRecord) -> None:
        if outcome.counted == "unserved":
            self._metrics.unserved(record.route, record.status)
        elif outcome.counted == "served":
            self._metrics.served(
                Served(
                    operation=OPERATIONS[record.endpoint],
                    route=record.route,
                    version=record.version or "-",
                    status=record.status,
                    error_code=record.error_code,
                    duration_s=outcome.latency_s,
                    ttft_s=outcome.ttft_s,
                    input_tokens=record.prompt_tokens,
                    output_tokens=record.completion_tokens,
                    cost=record.cost,
                    energy_wh=record.energy_wh,
                    pii=record.pii,
                    injection=record.injection,
                )
            )


def _record(outcome: Outcome, cost: float, energy_wh: float, carbon_g: float) -> RequestRecord:
    overhead_s = None
    if outcome.engine_s is not None:
        overhead_s = max(outcome.latency_s - outcome.engine_s, 0.0)
    return RequestRecord(
        id=outcome.id,
        at=outcome.at,
        key_id=outcome.key_id,
        endpoint=outcome.endpoint,
        route=outcome.route,
        version=outcome.version,
        status=outcome.status,
        error_code=outcome.error_code,
        latency_ms=outcome.latency_s * 1000,
        ttft_ms=None if outcome.ttft_s is None else outcome.ttft_s * 1000,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        cost=cost,
        streamed=outcome.streamed,
        pii=dict(outcome.pii),
        injection=list(outcome.injection),
        content=outcome.content,
        overhead_ms=None if overhead_s is None else overhead_s * 1000,
        energy_wh=energy_wh,
        carbon_g=carbon_g,
        user=outcome.user,
        variant=outcome.variant,
        fallback_from=outcome.fallback_from,
        finish_reason=outcome.finish_reason,
        response_format=_format_type(outcome.response_format),
        schema_name=_schema_name(outcome.response_format),
        tool_parts=list(outcome.tool_calls),
        cache_hit=outcome.cache == "hit",
    )


def _format_type(asked: Mapping[str, Any] | None) -> str | None:
    kind = None if asked is None else asked.get("type")
    return kind if isinstance(kind, str) else None


def _schema_name(asked: Mapping[str, Any] | None) -> str | None:
    spec = None if asked is None else asked.get("json_schema")
    name = spec.get("name") if isinstance(spec, Mapping) else None
    return name[:64] if isinstance(name, str) else None
