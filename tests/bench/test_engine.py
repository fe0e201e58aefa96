"""The engine benchmark (bench/engine.py) sends the server's admin key and fails loudly when
it cannot measure what it was asked to. Against a stand-in server (tests/bench/
fake_openai.py): the real three servers take minutes to start and llama-server a build."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from bench.engine_load import EmbeddingsFailed, LevelResult, run_embeddings, warm_up
from bench.engine_servers import ServerCommand, auth_headers, modelyard_command, running

from bench import engine

FAKE = Path(__file__).with_name("fake_openai.py")
KEY = "sk-bench-test"


def fake(key: str, key_file: Path | None) -> Callable[[int], ServerCommand]:
    def command(port: int) -> ServerCommand:
        argv = [sys.executable, str(FAKE), str(port), key]
        return ServerCommand("modelyard", argv, "/readyz", "default", key_file=key_file)

    return command


def write_key(tmp_path: Path) -> Path:
    key_file = tmp_path / "admin.key"
    key_file.write_text(KEY + "\n")
    return key_file


def test_modelyard_is_sent_the_admin_key_of_its_home(tmp_path: Path) -> None:
    spec = modelyard_command(tmp_path / "home", {})(8000)
    assert spec.key_file == tmp_path / "home" / "admin.key"
    moved = modelyard_command(tmp_path / "home", {"MODELYARD_HOME": str(tmp_path / "other")})
    assert moved(8000).key_file == tmp_path / "other" / "admin.key"
    assert auth_headers(write_key(tmp_path)) == {"authorization": f"Bearer {KEY}"}
    assert auth_headers(tmp_path / "missing.key") == {}
    assert auth_headers(None) == {}


def test_chat_and_embeddings_carry_the_key(tmp_path: Path) -> None:
    with running(fake(KEY, write_key(tmp_path)), tmp_path / "logs") as server:
        assert server.headers == {"authorization": f"Bearer {KEY}"}
        result = asyncio.run(warm_up(server.base_url, "default", 8, 30, server.headers))
        assert result.error is None
        assert result.completion_tokens == 2
        embedded = asyncio.run(run_embeddings(server.base_url, "default", 2, 2, server.headers))
        assert (embedded.inputs, embedded.dimensions) == (4, 3)


def test_a_refused_key_is_an_error_not_a_blank_row(tmp_path: Path) -> None:
    with running(fake(KEY, None), tmp_path / "logs") as server:
        result = asyncio.run(warm_up(server.base_url, "default", 8, 30, server.headers))
        assert result.error is not None and result.error.startswith("HTTP 401")
        with pytest.raises(EmbeddingsFailed, match="HTTP 401"):
            asyncio.run(run_embeddings(server.base_url, "default", 1, 1, server.headers))
        args = engine.parse_args(["--servers", "modelyard", "--concurrency", "1"])
        run = engine.bench_server("modelyard", fake(KEY, None), args, tmp_path / "logs")
    assert run.error is not None and "warm-up failed: HTTP 401" in run.error
    assert run.levels == []


def level(server: str, concurrency: int, errors: int = 0) -> LevelResult:
    return LevelResult(
        server, concurrency, 8, errors, 1.0, 100.0, 200.0, 20.0, 100.0, 64.0, {}, None
    )


def measured_runs() -> list[engine.ServerRun]:
    return [
        engine.ServerRun(name, levels=[level(name, 1), level(name, 8)]) for name in engine.SERVERS
    ]


def test_everything_measured_passes() -> None:
    args = engine.parse_args([])
    runs = measured_runs()
    targets = engine.evaluate_targets(runs)
    report = engine.EmbeddingReport()
    assert engine.unmeasured(args, runs, targets, report) == []
    assert engine.report_unmeasured([]) == 0


def test_what_was_not_measured_is_listed() -> None:
    args = engine.parse_args([])
    runs = measured_runs()
    runs[0] = engine.ServerRun("modelyard", error="warm-up failed: HTTP 401: no key")
    runs[1].levels[0] = level("llama-cpp-python", 1, errors=3)
    targets = engine.evaluate_targets(runs)
    report = engine.EmbeddingReport(error="POST /v1/embeddings answered HTTP 401: no key")
    problems = engine.unmeasured(args, runs, targets, report)
    assert problems == [
        "modelyard: warm-up failed: HTTP 401: no key",
        "llama-cpp-python: 3 of 8 requests failed at 1 streams",
        *(f"target not measured: {t.name} / {t.reference}" for t in engine.TARGETS),
        "modelyard embeddings: POST /v1/embeddings answered HTTP 401: no key",
    ]


def test_targets_not_asked_for_are_not_failures() -> None:
    runs = [engine.ServerRun("modelyard", levels=[level("modelyard", 1)])]
    targets = engine.evaluate_targets(runs)
    report = engine.EmbeddingReport()
    only_modelyard = engine.parse_args(["--servers", "modelyard"])
    assert engine.unmeasured(only_modelyard, runs, targets, report) == []
    embeddings_only = engine.parse_args(["--embeddings-only"])
    assert engine.unmeasured(embeddings_only, [], engine.evaluate_targets([]), report) == []


def test_main_exits_non_zero_when_a_target_cannot_be_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = [engine.ServerRun(name, error="warm-up failed: HTTP 401") for name in engine.SERVERS]
    report = engine.EmbeddingReport(error="POST /v1/embeddings answered HTTP 401")
    monkeypatch.setattr(engine, "run_all", lambda *_: (failed, None, report))
    monkeypatch.setattr(engine, "smollm2_path", lambda: tmp_path / "model.gguf")
    assert engine.main(["--out", str(tmp_path / "engine.json")]) == 1
    err = capsys.readouterr().err
    assert "bench/engine.py FAILED" in err
    assert "modelyard: warm-up failed: HTTP 401" in err
    assert "target not measured: aggregate tok/s, 8 streams / llama-server" in err
    assert "not_measured" in (tmp_path / "engine.json").read_text()
