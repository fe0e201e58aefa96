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
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelyard.engines.pool import EngineState
from modelyard.observe.requestlog import RequestLogWriter
from modelyard.registry.protocol import version_name

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
QUALITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


@dataclass(frozen=True)
class MetricSpec:
    """One metric of ``GET /metrics``: the app's registry and docs/observe.md's table are
    both made from these."""

    name: str  # a counter's without the ``_total`` the exposition adds
    kind: Literal["counter", "gauge", "histogram"]
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def exposed(self) -> str:
        """The name in the exposition (and in PromQL)."""
        return f"{self.name}_total" if self.kind == "counter" else self.name

    def counter(self, registry: CollectorRegistry) -> Counter:
        return Counter(self.name, self.help, self.labels, registry=registry)

    def gauge(self, registry: CollectorRegistry) -> Gauge:
        return Gauge(self.name, self.help, self.labels, registry=registry)

    def histogram(self, registry: CollectorRegistry) -> Histogram:
        return Histogram(self.name, self.help, self.labels, buckets=self.buckets, registry=registry)

    def gauge_family(self) -> GaugeMetricFamily:
        """A family a collector fills when scraped."""
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)

    def value_family(self, value: float) -> Metric:
        """An unlabelled family of one value, read when scraped."""
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, value=value)
        return GaugeMetricFamily(self.name, self.help, value=value)


_GEN_AI = ("gen_ai_operation_name", "route", "version")
REQUESTS = MetricSpec(
    "modelyard_requests",
    "counter",
    "Requests served, by route, version and status.",
    ("route", "version", "status"),
)
FALLBACKS = MetricSpec(
    "modelyard_fallbacks",
    "counter",
    "Requests a fallback target answered after their target failed or was skipped.",
    ("route", "failed_version"),
)
SHADOW_REQUESTS = MetricSpec(
    "modelyard_shadow_requests",
    "counter",
    "Mirrored requests, by outcome (sent, dropped when the shadow pool was full).",
    ("route", "outcome"),
)
COMBINED = MetricSpec(
    "modelyard_combined_requests",
    "counter",
    "Requests a combination route answered, by kind and decision (cascade: confident, "
    "low_confidence, invalid, small_failed, small_unable; vote: majority, tie; best_of_n: best).",
    ("route", "kind", "decision"),
)
CASCADE_COST = MetricSpec(
    "modelyard_cascade_cost",
    "counter",
    "Token cost of a cascade's answered requests (basis cascade: what it spent, both models; "
    "basis large_only: what the large model alone would have cost); the difference is saved.",
    ("route", "basis"),
)
CACHE_LOOKUPS = MetricSpec(
    "modelyard_cache_lookups",
    "counter",
    "Response-cache lookups, by result (hit, miss; bypass: a request the route's cache may "
    "not answer, such as one sampled without a seed).",
    ("route", "result"),
)
CACHE_SAVED_COST = MetricSpec(
    "modelyard_cache_saved_cost",
    "counter",
    "What the answers of cache hits cost when they were generated (their tokens at the "
    "version's price), not spent again.",
    ("route",),
)
LIVE_JUDGE_SAMPLES = MetricSpec(
    "modelyard_live_judge_samples",
    "counter",
    "Answers sampled for live judging, by outcome (judged, unscored: the reply held no score, "
    "failed: the judge call failed, dropped: the queue was full, over_budget: the route's "
    "judge budget was spent).",
    ("route", "outcome"),
)
LIVE_QUALITY = MetricSpec(
    "modelyard_live_quality",
    "histogram",
    "Live judges' scores of sampled answers on 0-1 (the score's place on the judge's scale), "
    "by route and the version that answered; _sum / _count is the mean.",
    ("route", "version"),
    QUALITY_BUCKETS,
)
IN_FLIGHT = MetricSpec("modelyard_requests_in_flight", "gauge", "Requests being served now.")
DURATION = MetricSpec(
    "gen_ai_server_request_duration_seconds",
    "histogram",
    "End-to-end duration of a generation or embedding request.",
    _GEN_AI,
    DURATION_BUCKETS,
)
TTFT = MetricSpec(
    "gen_ai_server_time_to_first_token_seconds",
    "histogram",
    "Time from the request's arrival to its first token.",
    _GEN_AI,
    TTFT_BUCKETS,
)
TPOT = MetricSpec(
    "gen_ai_server_time_per_output_token_seconds",
    "histogram",
    "Time per output token after the first.",
    _GEN_AI,
    TPOT_BUCKETS,
)
TOKENS = MetricSpec(
    "gen_ai_client_token_usage",
    "histogram",
    "Tokens per request, by type (input or output).",
    ("gen_ai_operation_name", "gen_ai_token_type", "route", "version"),
    TOKEN_BUCKETS,
)
TOKEN_TOTAL = MetricSpec(
    "modelyard_tokens", "counter", "Tokens processed.", ("type", "route", "version")
)
COST = MetricSpec(
    "modelyard_cost", "counter", "Cost of served requests (the versions' price unit).", ("route",)
)
ENERGY = MetricSpec(
    "modelyard_energy_wh", "counter", "Estimated energy of served requests, Wh.", ("route",)
)
ENGINE_ERRORS = MetricSpec(
    "modelyard_engine_errors", "counter", "Errors from engines, by code.", ("version", "code")
)
RATE_LIMITED = MetricSpec(
    "modelyard_rate_limit_rejections",
    "counter",
    "Requests refused by rate limits or budgets.",
    ("route", "code"),
)
PII = MetricSpec(
    "modelyard_pii_detections", "counter", "Personal data found in requests.", ("entity",)
)
INJECTION = MetricSpec(
    "modelyard_injection_flags", "counter", "Prompt-injection patterns found.", ("rule",)
)
TOOL_CALLS = MetricSpec(
    "modelyard_tool_calls",
    "counter",
    "Tool calls the models made (choice 0 of each answer), by route; counted when the "
    "request-log writer reads the answer.",
    ("route",),
)
FORMAT_FAILURES = MetricSpec(
    "modelyard_structured_output_failures",
    "counter",
    "Answers to a json_object or json_schema request that are not JSON (invalid_json) or "
    "not valid under the schema (schema_mismatch).",
    ("route", "reason"),
)
FEEDBACK = MetricSpec("modelyard_feedback", "counter", "Feedback received.", ("name", "source"))
ENGINE_ACTIVE = MetricSpec(
    "modelyard_engine_active_sequences", "gauge", "Sequences being decoded.", ("version",)
)
ENGINE_WAITING = MetricSpec(
    "modelyard_engine_queue_depth", "gauge", "Requests waiting for a sequence.", ("version",)
)
ENGINE_REUSED = MetricSpec(
    "modelyard_engine_prefix_cache_reused_tokens",
    "gauge",
    "Prompt tokens served from a reused KV cache since the engine started.",
    ("version",),
)
LOG_QUEUE = MetricSpec(
    "modelyard_request_log_queue_rows", "gauge", "Request-log rows waiting for the writer."
)
LOG_WRITTEN = MetricSpec(
    "modelyard_request_log_written_rows", "counter", "Request-log rows written."
)
LOG_DROPPED = MetricSpec(
    "modelyard_request_log_dropped_rows",
    "counter",
    "Request-log rows dropped because the queue was full.",
)
LOG_FAILED = MetricSpec(
    "modelyard_request_log_failed_rows", "counter", "Request-log rows given up after failed writes."
)
LOG_RECOVERED = MetricSpec(
    "modelyard_request_log_recovered_rows",
    "counter",
    "Request-log rows replayed at start-up from the journal of a process that died.",
)
LOG_JOURNAL_ERRORS = MetricSpec(
    "modelyard_request_log_journal_errors",
    "counter",
    "Request-log rows the journal could not append (the row still goes to the store).",
)
# Every metric, in the order of the exposition: what docs/observe.md lists.
METRICS = (
    REQUESTS,
    FALLBACKS,
    SHADOW_REQUESTS,
    CACHE_LOOKUPS,
    CACHE_SAVED_COST,
    COMBINED,
    CASCADE_COST,
    LIVE_JUDGE_SAMPLES,
    LIVE_QUALITY,
    IN_FLIGHT,
    DURATION,
    TTFT,
    TPOT,
    TOKENS,
    TOKEN_TOTAL,
    COST,
    ENERGY,
    ENGINE_ERRORS,
    RATE_LIMITED,
    PII,
    INJECTION,
    TOOL_CALLS,
    FORMAT_FAILURES,
    FEEDBACK,
    ENGINE_ACTIVE,
    ENGINE_WAITING,
    ENGINE_REUSED,
    LOG_QUEUE,
    LOG_WRITTEN,
    LOG_DROPPED,
    LOG_FAILED,
    LOG_RECOVERED,
    LOG_JOURNAL_ERRORS,
)


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
        families = (
            (ENGINE_ACTIVE.gauge_family(), "active"),
            (ENGINE_WAITING.gauge_family(), "waiting"),
            (ENGINE_REUSED.gauge_family(), "reused_prompt_tokens"),
        )
        for state in self._states():
            details = state.info.details if state.info is not None else {}
            version = version_name(state.model, state.version)
            for family, field in families:
                value = details.get(field)
                if isinstance(value, int | float):
                    family.add_metric([version], float(value))
        for family, _ in families:
            yield family


class _LogCollector(Collector):
    """The request-log writer's queue and counters, read when scraped."""

    def __init__(self, log: RequestLogWriter) -> None:
        self._log = log

    def collect(self) -> Iterator[Metric]:
        stats = self._log.stats
        yield LOG_QUEUE.value_family(self._log.queued)
        yield LOG_WRITTEN.value_family(stats.written)
        yield LOG_DROPPED.value_family(stats.dropped)
        yield LOG_FAILED.value_family(stats.failed)
        yield LOG_RECOVERED.value_family(stats.recovered)
        yield LOG_JOURNAL_ERRORS.value_family(stats.journal_errors)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        # Labelled children the request path updates, by metric and labels (bounded as the
        # labels are): ``labels()`` takes a lock and validates its values on every call.
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self.requests = REQUESTS.counter(r)
        self.fallbacks = FALLBACKS.counter(r)
        self.shadow_requests = SHADOW_REQUESTS.counter(r)
        self.cache_lookups = CACHE_LOOKUPS.counter(r)
        self.cache_saved_cost = CACHE_SAVED_COST.counter(r)
        self.combined = COMBINED.counter(r)
        self.cascade_cost = CASCADE_COST.counter(r)
        self.live_judge_samples = LIVE_JUDGE_SAMPLES.counter(r)
        self.live_quality = LIVE_QUALITY.histogram(r)
        self.in_flight = IN_FLIGHT.gauge(r)
        self.duration = DURATION.histogram(r)
        self.ttft = TTFT.histogram(r)
        self.tpot = TPOT.histogram(r)
        self.tokens = TOKENS.histogram(r)
        self.token_total = TOKEN_TOTAL.counter(r)
        self.cost = COST.counter(r)
        self.energy = ENERGY.counter(r)
        self.engine_errors = ENGINE_ERRORS.counter(r)
        self.rate_limited = RATE_LIMITED.counter(r)
        self.pii = PII.counter(r)
        self.injection = INJECTION.counter(r)
        self.tool_calls = TOOL_CALLS.counter(r)
        self.format_failures = FORMAT_FAILURES.counter(r)
        self.feedback = FEEDBACK.counter(r)

    def watch_engines(self, states: Callable[[], list[EngineState]]) -> None:
        self.registry.register(_EngineCollector(states))

    def watch_log(self, log: RequestLogWriter) -> None:
        self.registry.register(_LogCollector(log))

    def answered(self, route: str, tool_calls: int, format_error: str | None) -> None:
        """An answer's tool calls and structured-output failure (from the request-log
        writer's thread: prometheus-client's metrics are thread-safe)."""
        if tool_calls:
            self.tool_calls.labels(route).inc(tool_calls)
        if format_error is not None:
            self.format_failures.labels(route, format_error).inc()

    def cache_looked(self, route: str, result: str, saved_cost: float) -> None:
        """A response-cache lookup's result, and what a hit saved."""
        self._child(self.cache_lookups, route, result).inc()
        if result == "hit":
            self._child(self.cache_saved_cost, route).inc(saved_cost)

    def live_judged(self, route: str, outcome: str) -> None:
        """A sample's fate in live judging (see ``LIVE_JUDGE_SAMPLES``)."""
        self._child(self.live_judge_samples, route, outcome).inc()

    def live_scored(self, route: str, version: str, quality: float) -> None:
        """A live judge's score of an answer of ``version``, on 0-1."""
        self._child(self.live_quality, route, version).observe(quality)

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
