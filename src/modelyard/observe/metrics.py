"""Prometheus metrics: in-memory counters and histograms of one app (its own registry,
never the global one), rendered at ``GET /metrics``.

Names follow the OpenTelemetry GenAI semantic conventions where one exists
(``gen_ai.server.request.duration`` → ``gen_ai_server_request_duration_seconds``, …).
Labels are bounded: route (a registered model name), version, operation, status class or
code, entity type — never key ids, users or prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelyard.engines.pool import EngineState
from modelyard.observe.requestlog import RequestLogWriter

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Buckets of the OpenTelemetry GenAI conventions (seconds and tokens).
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


@dataclass(frozen=True)
class Served:
    """What one finished request contributes to the metrics."""

    operation: str  # chat | text_completion | embeddings
    route: str
    version: str
    status: int
    error_code: str | None
    duration_s: float
    ttft_s: float | None
    input_tokens: int
    output_tokens: int
    cost: float
    energy_wh: float
    pii: dict[str, int]
    injection: list[str]


class _EngineCollector(Collector):
    """Engine queue depth and prefix-cache reuse, read from the pool when scraped."""

    def __init__(self, states: Callable[[], list[EngineState]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "modelyard_engine_active_sequences", "Sequences being decoded.", labels=["version"]
        )
        waiting = GaugeMetricFamily(
            "modelyard_engine_queue_depth", "Requests waiting for a sequence.", labels=["version"]
        )
        reused = GaugeMetricFamily(
            "modelyard_engine_prefix_cache_reused_tokens",
            "Prompt tokens served from a reused KV cache since the engine started.",
            labels=["version"],
        )
        for state in self._states():
            details = state.info.details if state.info is not None else {}
            version = f"{state.model}@{state.version}"
            for family, field in (
                (active, "active"),
                (waiting, "waiting"),
                (reused, "reused_prompt_tokens"),
            ):
                value = details.get(field)
                if isinstance(value, int | float):
                    family.add_metric([version], float(value))
        yield active
        yield waiting
        yield reused


class _LogCollector(Collector):
    """The request-log writer's queue and counters, read when scraped."""

    def __init__(self, log: RequestLogWriter) -> None:
        self._log = log

    def collect(self) -> Iterator[Metric]:
        stats = self._log.stats
        yield GaugeMetricFamily(
            "modelyard_request_log_queue_rows",
            "Request-log rows waiting for the writer.",
            value=self._log.queued,
        )
        for name, value, text in (
            ("written", stats.written, "written"),
            ("dropped", stats.dropped, "dropped because the queue was full"),
            ("failed", stats.failed, "given up after failed writes"),
        ):
            yield CounterMetricFamily(
                f"modelyard_request_log_{name}_rows", f"Request-log rows {text}.", value=value
            )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Labelled children the request path updates, by metric and labels (bounded as the
        # labels are): ``labels()`` takes a lock and validates its values on every call.
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        r = self.registry
        self.requests = Counter(
            "modelyard_requests",
            "Requests served, by route, version and status.",
            ["route", "version", "status"],
            registry=r,
        )
        self.fallbacks = Counter(
            "modelyard_fallbacks",
            "Requests a fallback target answered after their target failed or was skipped.",
            ["route", "failed_version"],
            registry=r,
        )
        self.shadow_requests = Counter(
            "modelyard_shadow_requests",
            "Mirrored requests, by outcome (sent, dropped when the shadow pool was full).",
            ["route", "outcome"],
            registry=r,
        )
        self.in_flight = Gauge(
            "modelyard_requests_in_flight", "Requests being served now.", registry=r
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "End-to-end duration of a generation or embedding request.",
            ["gen_ai_operation_name", "route", "version"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from the request's arrival to its first token.",
            ["gen_ai_operation_name", "route", "version"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "gen_ai_server_time_per_output_token_seconds",
            "Time per output token after the first.",
            ["gen_ai_operation_name", "route", "version"],
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request, by type (input or output).",
            ["gen_ai_operation_name", "gen_ai_token_type", "route", "version"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.token_total = Counter(
            "modelyard_tokens", "Tokens processed.", ["type", "route", "version"], registry=r
        )
        self.cost = Counter(
            "modelyard_cost",
            "Cost of served requests (the versions' price unit).",
            ["route"],
            registry=r,
        )
        self.energy = Counter(
            "modelyard_energy_wh", "Estimated energy of served requests, Wh.", ["route"], registry=r
        )
        self.engine_errors = Counter(
            "modelyard_engine_errors",
            "Errors from engines, by code.",
            ["version", "code"],
            registry=r,
        )
        self.rate_limited = Counter(
            "modelyard_rate_limit_rejections",
            "Requests refused by rate limits or budgets.",
            ["route", "code"],
            registry=r,
        )
        self.pii = Counter(
            "modelyard_pii_detections", "Personal data found in requests.", ["entity"], registry=r
        )
        self.injection = Counter(
            "modelyard_injection_flags", "Prompt-injection patterns found.", ["rule"], registry=r
        )
        self.feedback = Counter(
            "modelyard_feedback", "Feedback received.", ["name", "source"], registry=r
        )

    def watch_engines(self, states: Callable[[], list[EngineState]]) -> None:
        self.registry.register(_EngineCollector(states))

    def watch_log(self, log: RequestLogWriter) -> None:
        self.registry.register(_LogCollector(log))

    def unserved(self, route: str, status: int) -> None:
        """A request that ended before a handler served it (invalid body, wrong role)."""
        self.requests.labels(route, "-", str(status)).inc()

    def served(self, s: Served) -> None:
        labels = (s.operation, s.route, s.version)
        child = self._child
        child(self.requests, s.route, s.version, str(s.status)).inc()
        if s.status == 429:
            self.rate_limited.labels(s.route, s.error_code or "rate_limit_exceeded").inc()
        if s.status >= 500 and s.error_code:
            self.engine_errors.labels(s.version, s.error_code).inc()
        for entity, count in s.pii.items():
            self.pii.labels(entity).inc(count)
        for rule in s.injection:
            self.injection.labels(rule).inc()
        if s.status >= 400:
            return
        child(self.duration, *labels).observe(s.duration_s)
        if s.ttft_s is not None:
            child(self.ttft, *labels).observe(s.ttft_s)
            if s.output_tokens > 1:
                per_token = (s.duration_s - s.ttft_s) / (s.output_tokens - 1)
                child(self.tpot, *labels).observe(max(per_token, 0.0))
        child(self.tokens, s.operation, "input", s.route, s.version).observe(s.input_tokens)
        child(self.token_total, "input", s.route, s.version).inc(s.input_tokens)
        if s.operation != "embeddings":
            child(self.tokens, s.operation, "output", s.route, s.version).observe(s.output_tokens)
            child(self.token_total, "output", s.route, s.version).inc(s.output_tokens)
        child(self.cost, s.route).inc(s.cost)
        child(self.energy, s.route).inc(s.energy_wh)

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> bytes:
        return generate_latest(self.registry)
