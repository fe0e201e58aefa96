"""OpenTelemetry traces of inference requests ([observe](../../../docs/observe.md#traces)).

Off by default, and then free: nothing here imports OpenTelemetry's SDK at module level, the app
holds ``None`` instead of a ``Tracing`` (``Services.tracing``), and the one check of it when
a request begins picks the plain exchange (``serving.traced`` says what a request's spans
are). On (``MODELYARD_TRACING=otlp``), a ``TracerProvider`` of the app's own (the global one
is left alone) samples by trace id, following a caller's ``traceparent``, and a
``BatchSpanProcessor`` exports ended spans in batches on its own thread, never on the event
loop. The exporter speaks OTLP over HTTP with protobuf: no gRPC runtime to install (grpcio
is a large native wheel with threads of its own), the port every OpenTelemetry collector,
Jaeger and Tempo open (4318), and it honours OpenTelemetry's own variables for headers,
timeout, compression and TLS (``OTEL_EXPORTER_OTLP_*``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from modelyard import __version__
from modelyard.config import Settings, otel_variables

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SERVICE_NAME = "modelyard"
TRACES_PATH = "/v1/traces"
DEFAULT_ENDPOINT = "http://localhost:4318" + TRACES_PATH
PROTOCOL = "http/protobuf"
# The exporter's logger: why an export failed is only said there.
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
CHECK_SPAN = "modelyard traces check"


class TracingMisconfigured(ValueError):
    """Tracing is on but its settings cannot work; the message says what to change."""


@dataclass(frozen=True)
class TracingConfig:
    endpoint: str  # the OTLP/HTTP traces URL spans are sent to
    endpoint_from: str  # the setting or variable that named it
    sample_ratio: float


class TracingStatus(BaseModel):
    """Whether this server exports traces, and where (``GET /api/tracing``)."""

    enabled: bool
    exporter: Literal["otlp-http"] | None = None
    endpoint: str | None = None  # without credentials
    endpoint_from: str | None = None
    sample_ratio: float | None = None
    service_name: str | None = None
    propagation: Literal["w3c-tracecontext"] | None = None


def tracing_config(settings: Settings) -> TracingConfig | None:
    """Where traces go and how many, or None when tracing is off. Raises
    TracingMisconfigured, saying what to change, when the settings cannot work."""
    if settings.tracing == "off":
        return None
    return export_config(settings)


def export_config(settings: Settings) -> TracingConfig:
    """Where traces go (whether tracing is on or not): ``MODELYARD_TRACING_ENDPOINT``, else
    OpenTelemetry's variables, else a collector on this machine."""
    variables = otel_variables()
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = variables.get(name)
        if protocol is not None and protocol != PROTOCOL:
            raise TracingMisconfigured(
                f"{name} is '{protocol}', but modelyard exports traces over OTLP/HTTP "
                f"({PROTOCOL}) only: unset it, and point MODELYARD_TRACING_ENDPOINT at the "
                "collector's OTLP/HTTP port (4318)"
            )
        if protocol is not None:
            break  # the traces' own variable wins over the general one
    endpoint, source = _endpoint(settings.tracing_endpoint, variables)
    _check_url(endpoint, source)
    return TracingConfig(endpoint, source, settings.tracing_sample_ratio)


def _endpoint(setting: str | None, variables: Mapping[str, str]) -> tuple[str, str]:
    if setting:
        url = setting.rstrip("/")
        return (
            url if url.endswith(TRACES_PATH) else url + TRACES_PATH
        ), "MODELYARD_TRACING_ENDPOINT"
    traces = variables.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces is not None:
        return traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    base = variables.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if base is not None:
        return base.rstrip("/") + TRACES_PATH, "OTEL_EXPORTER_OTLP_ENDPOINT"
    return DEFAULT_ENDPOINT, "default"


def _check_url(url: str, source: str) -> None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TracingMisconfigured(
            f"{source} gives the trace endpoint {url!r}, which is not an http:// or https:// "
            "URL; give the collector's OTLP/HTTP address, such as http://otel-collector:4318"
        )


def shown(url: str) -> str:
    """``url`` without credentials (``user:password@``) or a query, to show or log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_tracing(settings: Settings, exporter: SpanExporter | None = None) -> Tracing | None:
    """The app's tracing, or None when it is off. ``exporter`` replaces the OTLP exporter
    (tests hand an in-memory one)."""
    config = tracing_config(settings)
    return None if config is None else Tracing(config, exporter)


class Tracing:
    """The app's tracer provider, its tracer and the W3C trace-context propagator."""

    def __init__(self, config: TracingConfig, exporter: SpanExporter | None = None) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.config = config
        self.provider: TracerProvider = TracerProvider(
            resource=resource(), sampler=ParentBased(TraceIdRatioBased(config.sample_ratio))
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter or otlp_exporter(config)))
        self.tracer: Tracer = self.provider.get_tracer("modelyard", __version__)
        self.propagator: TraceContextTextMapPropagator = TraceContextTextMapPropagator()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Export the spans ended so far. Blocks: from async code, call it on a thread."""
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        """Export what is left and stop the exporter's thread (blocks, as ``flush``)."""
        self.provider.shutdown()

    def status(self) -> TracingStatus:
        name = self.provider.resource.attributes.get("service.name")
        return TracingStatus(
            enabled=True,
            exporter="otlp-http",
            endpoint=shown(self.config.endpoint),
            endpoint_from=self.config.endpoint_from,
            sample_ratio=self.config.sample_ratio,
            service_name=str(name) if name is not None else SERVICE_NAME,
            propagation="w3c-tracecontext",
        )


def status_of(tracing: Tracing | None) -> TracingStatus:
    return TracingStatus(enabled=False) if tracing is None else tracing.status()


def resource() -> Resource:
    """``service.name`` modelyard and its version; ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` add to them and win (a replica's pod name, say)."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    own = Resource.create({"service.name": SERVICE_NAME, "service.version": __version__})
    return own.merge(OTELResourceDetector().detect())


def otlp_exporter(config: TracingConfig, timeout_s: float | None = None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=config.endpoint, timeout=timeout_s)


@dataclass(frozen=True)
class ExportCheck:
    """What ``modelyard traces check`` found: whether the collector took a test span."""

    ok: bool
    endpoint: str  # without credentials
    endpoint_from: str
    trace_id: str
    detail: str
    tracing: str  # the server's setting: off or otlp


def check_export(settings: Settings, timeout_s: float = 5.0) -> ExportCheck:
    """Send one span, ``modelyard traces check``, where the server would send its traces
    (whether tracing is on or not), and say whether the collector accepted it."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.trace import SpanKind

    config = export_config(settings)
    span = (
        TracerProvider(resource=resource())
        .get_tracer("modelyard", __version__)
        .start_span(CHECK_SPAN, kind=SpanKind.INTERNAL, attributes={"modelyard.check": True})
    )
    span.end()
    assert isinstance(span, ReadableSpan)  # the SDK's spans are
    exporter = otlp_exporter(config, timeout_s)
    with _exporter_log() as said:
        exported = exporter.export([span])
    exporter.shutdown()
    ok = exported is SpanExportResult.SUCCESS
    # Why it failed: what the exporter said, first (the cause) to last (its verdict).
    detail = "accepted" if ok else "; ".join(dict.fromkeys(said)) or "the export failed"
    return ExportCheck(
        ok,
        shown(config.endpoint),
        config.endpoint_from,
        f"{span.get_span_context().trace_id:032x}",
        detail,
        settings.tracing,
    )


@contextmanager
def _exporter_log() -> Iterator[list[str]]:
    """What the exporter logs meanwhile (why an export failed), kept instead of printed."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    logger = logging.getLogger(EXPORTER_LOGGER)
    handler, propagate = Keep(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield said
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
