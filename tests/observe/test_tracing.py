"""OpenTelemetry traces (issue 19, part 5): a request's span tree and its GenAI attributes,
a caller's trace continued, the trace context sent upstream, errors, content never in a
span; a real OTLP/HTTP export to a collector; ``modelyard traces check``; and, off, no
OpenTelemetry SDK and no ``traceparent`` at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelyard.app import build_app
from modelyard.cli import main
from modelyard.config import Settings
from modelyard.observe.tracing import TracingMisconfigured, tracing_config
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient, admin_key, bearer, register_scripted
from tests.fake_vllm import MODEL, FakeVLLM
from tests.live import free_port
from tests.observe.otlp_collector import otlp_collector

pytestmark = pytest.mark.anyio
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7
EMAIL = "jane.doe@example.com"


@contextmanager
def upstream() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A fake vLLM that keeps each request's headers: its base URL and the headers."""
    headers: list[dict[str, str]] = []

    class Keeping(FakeVLLM):
        received: list[dict[str, Any]] = []

        def do_POST(self) -> None:
            headers.append({k.lower(): v for k, v in self.headers.items()})
            super().do_POST()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keeping)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", headers
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def relay(home_registry: Registry) -> Iterator[list[dict[str, str]]]:
    """Model ``relay``: an upstream version on the fake vLLM; yields the headers it got."""
    with upstream() as (url, headers):
        version = home_registry.add_version(
            "relay",
            VersionCreate(engine_kind="upstream", artifact_uri=url, parameters={"model": MODEL}),
            actor="tests",
        )
        home_registry.set_alias("relay", "production", version.number, actor="t", reason="t")
        yield headers


@pytest.fixture
def tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_TRACING", "otlp")


@asynccontextmanager
async def app_with(exporter: InMemorySpanExporter | None = None) -> AsyncIterator[AppClient]:
    settings = Settings()
    app = build_app(settings, span_exporter=exporter)
    async with (
        app.router.lifespan_context(app),
        AppClient(
            app, base_url="http://modelyard", headers=bearer(admin_key(settings.home))
        ) as client,
    ):
        yield client


@pytest.fixture
def memory() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    tracing_on: None, memory: InMemorySpanExporter, home_registry: Registry
) -> AsyncIterator[AppClient]:
    register_scripted(home_registry, "echo")
    async with app_with(memory) as client:
        yield client


async def spans_of(client: AppClient, memory: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    """The spans ended so far, by name (exported by the batch processor's flush)."""
    tracing = client.services.tracing
    assert tracing is not None
    assert await asyncio.to_thread(tracing.flush)
    return {span.name: span for span in memory.get_finished_spans()}


def chat(model: str, text: str = "say: hello there", **body: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **body}


def parent_of(span: ReadableSpan) -> int:
    assert span.parent is not None, span.name
    return span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    context = span.context
    assert context is not None
    return context.span_id


def trace_id(span: ReadableSpan) -> int:
    context = span.context
    assert context is not None
    return context.trace_id


def attributes(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def traceparent(trace: int, span: int, sampled: bool = True) -> str:
    return f"00-{trace:032x}-{span:016x}-{'01' if sampled else '00'}"


async def test_a_relayed_chat_leaves_a_tree_of_genai_spans(
    traced: AppClient, relay: list[dict[str, str]], memory: InMemorySpanExporter
) -> None:
    await traced.reload_routes()
    body = chat("relay", max_tokens=20, temperature=0.5, top_p=0.9)
    response = await traced.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    spans = await spans_of(traced, memory)
    assert set(spans) == {"chat relay", "guard", "routing", f"chat {MODEL}", "POST"}
    gateway, engine, http = spans["chat relay"], spans[f"chat {MODEL}"], spans["POST"]
    assert gateway.parent is None and gateway.kind is SpanKind.SERVER
    assert parent_of(spans["guard"]) == parent_of(spans["routing"]) == span_id(gateway)
    assert parent_of(engine) == span_id(spans["routing"])
    assert parent_of(http) == span_id(engine)
    assert (engine.kind, http.kind) == (SpanKind.CLIENT, SpanKind.CLIENT)
    said = attributes(gateway)
    version = response.headers["x-modelyard-version"]
    assert {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "modelyard",
        "gen_ai.request.model": "relay",
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.response.model": version,
        "gen_ai.response.id": response.json()["id"],
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 31,
        "gen_ai.usage.output_tokens": 21,
        "http.response.status_code": 200,
        "modelyard.request_id": response.headers["x-modelyard-request-id"],
    }.items() <= dict(said).items()
    assert "error.type" not in said and gateway.status.status_code is StatusCode.UNSET
    assert {
        "gen_ai.provider.name": "upstream",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL,
        "gen_ai.response.id": "chatcmpl-5a1d",
        "gen_ai.usage.output_tokens": 21,
        "modelyard.version": version,
    }.items() <= dict(attributes(engine)).items()
    assert attributes(spans["routing"])["modelyard.routing.served_by"] == version
    assert attributes(http)["url.full"].endswith("/v1/chat/completions")
    assert attributes(http)["http.request.method"] == "POST"


async def test_the_upstream_gets_the_trace_context_of_its_call(
    traced: AppClient, relay: list[dict[str, str]], memory: InMemorySpanExporter
) -> None:
    await traced.reload_routes()
    assert (await traced.post("/v1/chat/completions", json=chat("relay"))).status_code == 200
    spans = await spans_of(traced, memory)
    version, trace, parent, flags = relay[-1]["traceparent"].split("-")
    assert (version, trace, parent) == (
        "00",
        f"{trace_id(spans['chat relay']):032x}",
        f"{span_id(spans['POST']):016x}",
    )
    assert int(flags, 16) & 1  # sampled


async def test_a_callers_trace_is_continued(
    traced: AppClient, relay: list[dict[str, str]], memory: InMemorySpanExporter
) -> None:
    await traced.reload_routes()
    headers = {"traceparent": traceparent(TRACE_ID, CALLER_SPAN)}
    response = await traced.post("/v1/chat/completions", json=chat("relay"), headers=headers)
    assert response.status_code == 200
    spans = await spans_of(traced, memory)
    assert {trace_id(span) for span in spans.values()} == {TRACE_ID}
    assert parent_of(spans["chat relay"]) == CALLER_SPAN
    assert relay[-1]["traceparent"].startswith(f"00-{TRACE_ID:032x}-")


async def test_a_stream_is_traced_until_its_last_event(
    traced: AppClient, relay: list[dict[str, str]], memory: InMemorySpanExporter
) -> None:
    await traced.reload_routes()
    response = await traced.post("/v1/chat/completions", json=chat("relay", stream=True))
    assert response.status_code == 200 and response.text.rstrip().endswith("[DONE]")
    spans = await spans_of(traced, memory)
    gateway, engine = spans["chat relay"], spans[f"chat {MODEL}"]
    assert gateway.end_time is not None and engine.end_time is not None
    assert gateway.end_time >= engine.end_time
    ttft = attributes(gateway)["gen_ai.server.time_to_first_token"]
    assert 0 < ttft < (gateway.end_time - (gateway.start_time or 0)) / 1e9
    assert [event.name for event in gateway.events] == ["first_token"]
    assert [event.name for event in engine.events] == ["first_token"]
    assert attributes(gateway)["gen_ai.usage.output_tokens"] == 21
    assert attributes(gateway)["modelyard.stream"] is True
    assert attributes(engine)["modelyard.engine.chunks"] == 4


async def test_an_upstream_failure_marks_the_spans(
    traced: AppClient, relay: list[dict[str, str]], memory: InMemorySpanExporter
) -> None:
    await traced.reload_routes()
    response = await traced.post("/v1/chat/completions", json=chat("relay", "please fail"))
    assert response.status_code == 502
    spans = await spans_of(traced, memory)
    for name in ("chat relay", "routing", f"chat {MODEL}", "POST"):
        assert attributes(spans[name])["error.type"] == "upstream_error", name
        assert spans[name].status.status_code is StatusCode.ERROR, name
    assert attributes(spans["chat relay"])["http.response.status_code"] == 502


async def test_a_fallback_shows_each_target_tried(
    traced: AppClient, home_registry: Registry, memory: InMemorySpanExporter
) -> None:
    register_scripted(home_registry, "chat", fail_when_prompt_contains="boom", fail_status=503)
    register_scripted(home_registry, "backup", replies=["backup answers"])
    await traced.reload_routes()
    policy = {"fallbacks": [{"model": "backup"}], "breaker": {"failures": 5, "cooldown_s": 1}}
    assert (await traced.put("/api/routes/chat", json={"policy": policy})).status_code == 200
    response = await traced.post("/v1/chat/completions", json=chat("chat", "boom"))
    assert response.status_code == 200, response.text
    assert await asyncio.to_thread(traced.services.tracing.flush)  # type: ignore[union-attr]
    ended = memory.get_finished_spans()
    calls = [span for span in ended if span.name in ("chat chat@1", "chat backup@1")]
    assert [span.name for span in calls] == ["chat chat@1", "chat backup@1"]
    assert attributes(calls[0])["error.type"] == "upstream_error"
    assert calls[0].kind is SpanKind.INTERNAL  # an in-process engine
    routing = next(span for span in ended if span.name == "routing")
    assert {span_id(routing)} == {parent_of(span) for span in calls}
    assert attributes(routing)["modelyard.routing.tried"] == ("chat@1", "backup@1")
    assert attributes(routing)["modelyard.routing.fallback_from"] == "chat@1"


async def test_spans_count_what_the_guard_found_and_never_hold_content(
    traced: AppClient, memory: InMemorySpanExporter
) -> None:
    text = f"Write to {EMAIL} about the secret plan"
    response = await traced.post("/v1/chat/completions", json=chat("echo", text))
    assert response.status_code == 200
    spans = await spans_of(traced, memory)
    guard = attributes(spans["guard"])
    assert guard["modelyard.guard.pii_found"] == 1
    assert guard["modelyard.guard.pii_entities"] == ("EMAIL",)
    values = json.dumps([list(attributes(s).values()) for s in spans.values()], default=str)
    assert EMAIL not in values and "secret plan" not in values
    assert all(EMAIL not in event.name for s in spans.values() for event in s.events)


async def test_a_refusal_ends_in_the_guard_span(
    traced: AppClient, memory: InMemorySpanExporter
) -> None:
    response = await traced.post("/v1/chat/completions", json=chat("echo", max_tokens=10**6))
    assert response.status_code == 400
    spans = await spans_of(traced, memory)
    assert attributes(spans["guard"])["error.type"] == "max_tokens_too_large"
    gateway = attributes(spans["chat echo"])
    assert gateway["error.type"] == "max_tokens_too_large"
    assert spans["chat echo"].status.status_code is StatusCode.UNSET  # the client's mistake
    assert "routing" not in spans


async def test_an_unsampled_request_exports_nothing_but_passes_its_decision_on(
    tracing_on: None,
    monkeypatch: pytest.MonkeyPatch,
    relay: list[dict[str, str]],
    memory: InMemorySpanExporter,
) -> None:
    monkeypatch.setenv("MODELYARD_TRACING_SAMPLE_RATIO", "0")
    async with app_with(memory) as client:
        assert (await client.post("/v1/chat/completions", json=chat("relay"))).status_code == 200
        assert await spans_of(client, memory) == {}
    assert int(relay[-1]["traceparent"].split("-")[3], 16) & 1 == 0  # not sampled


async def test_spans_reach_an_otlp_collector(
    tracing_on: None, monkeypatch: pytest.MonkeyPatch, home_registry: Registry
) -> None:
    register_scripted(home_registry, "echo")
    with otlp_collector() as (url, received):
        monkeypatch.setenv("MODELYARD_TRACING_ENDPOINT", url)
        async with app_with() as client:
            response = await client.post("/v1/chat/completions", json=chat("echo"))
            assert response.status_code == 200
            status = (await client.get("/api/tracing")).json()
            page = await client.get("/ui/monitor")
        # the app's shutdown exported the rest
    assert status["enabled"] and status["endpoint"] == url + "/v1/traces"
    assert url + "/v1/traces" in page.text
    found = {span.name: (resource, span) for resource, span in received.spans()}
    resource, span = found["chat echo"]
    assert resource["service.name"] == "modelyard"
    assert span.kind == span.SPAN_KIND_SERVER
    assert {"guard", "routing", "chat echo@1"} <= set(found)


async def test_off_sends_no_trace_context_and_says_so(
    relay: list[dict[str, str]], memory: InMemorySpanExporter
) -> None:
    async with app_with(memory) as client:
        assert client.services.tracing is None
        headers = {"traceparent": traceparent(TRACE_ID, CALLER_SPAN)}
        response = await client.post("/v1/chat/completions", json=chat("relay"), headers=headers)
        assert response.status_code == 200
        assert (await client.get("/api/tracing")).json()["enabled"] is False
        assert "Traces:\n  off" in (await client.get("/ui/monitor")).text
    assert "traceparent" not in relay[-1]
    assert memory.get_finished_spans() == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELYARD_TRACING_ENDPOINT": "collector:4318"}, "not an http:// or https:// URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://x:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTLP/HTTP (http/protobuf) only"),
    ],
)
def test_a_setting_that_cannot_work_stops_the_start(
    tracing_on: None, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(TracingMisconfigured, match=message.replace("(", r"\(").replace(")", r"\)")):
        tracing_config(Settings())
    done = CliRunner().invoke(main, ["serve"])
    assert done.exit_code == 1 and message in done.output, done.output


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, "http://localhost:4318/v1/traces"),
        ({"MODELYARD_TRACING_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        ({"MODELYARD_TRACING_ENDPOINT": "https://c/v1/traces"}, "https://c/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/t"}, "http://c/t"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "MODELYARD_TRACING_ENDPOINT": "http://b"},
            "http://b/v1/traces",
        ),
    ],
)
def test_where_traces_go(
    tracing_on: None, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], endpoint: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = tracing_config(Settings())
    assert config is not None and config.endpoint == endpoint


def test_traces_check_reports_whether_the_collector_took_the_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with otlp_collector() as (url, received):
        monkeypatch.setenv("MODELYARD_TRACING_ENDPOINT", url)
        done = CliRunner().invoke(main, ["traces", "check", "--json"])
        assert done.exit_code == 0, done.output
        out = json.loads(done.output)
        assert (
            out["ok"]
            and out["tracing"] == "off"
            and out["endpoint_from"] == "MODELYARD_TRACING_ENDPOINT"
        )
        assert [span.name for _, span in received.spans()] == ["modelyard traces check"]
        received.status = 400
        done = CliRunner().invoke(main, ["traces", "check"])
        assert done.exit_code == 1 and "code: 400" in done.output, done.output
    monkeypatch.setenv("MODELYARD_TRACING_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    done = CliRunner().invoke(main, ["traces", "check", "--timeout", "0.5"])
    assert done.exit_code == 1 and "did not take the span" in done.output, done.output


def test_off_the_request_path_imports_no_opentelemetry(
    home_registry: Registry, modelyard_home: Path
) -> None:
    """As test_import_footprint checks for the heavy modules (it runs the app in a fresh
    interpreter): tracing off, neither starting nor serving imports OpenTelemetry's SDK
    (FastAPI imports its API, whatever modelyard does)."""
    from tests.test_import_footprint import serve

    register_scripted(home_registry, "echo")
    result = serve(modelyard_home, "echo")
    assert [status for status, _ in result["replies"]] == [200, 200]
    assert "opentelemetry.sdk" not in result["started"] + result["served"]
