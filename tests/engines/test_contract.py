"""The engine contract as data: capabilities, per-kind settings, typed info, and a
third-party kind on the same footing as the built-ins."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path

import pytest
from cogapp import Cog
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from modelyard.config import EngineSettings, Settings
from modelyard.engines import (
    Capabilities,
    Chunk,
    Engine,
    EngineInfo,
    EngineParameters,
    EngineSpec,
    GenerationRequest,
    Usage,
    kinds,
)
from modelyard.engines.kinds import builtin_kinds, engine_class
from modelyard.engines.llamacpp.parameters import LlamaCppSettings
from modelyard.engines.pool import EngineState
from modelyard.engines.upstream import UpstreamSettings
from modelyard.registry import InvalidRegistration, Registry
from modelyard.registry.protocol import VersionCreate

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = ["classifier", "llamacpp", "scripted", "sentence-transformers", "upstream"]


class EchoParameters(EngineParameters):
    prefix: str = Field(default="echo: ", description="Put before the prompt.")


class EchoSettings(EngineSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_ECHO_", extra="ignore")

    delay_s: float = Field(default=0.0, description="Wait before answering.")


class EchoEngine(Engine):
    """The third-party kind of docs/engines.md."""

    kind = "echo"
    capabilities = Capabilities(completion=True, streaming=True)
    Parameters = EchoParameters
    Settings = EchoSettings

    def __init__(self, spec: EngineSpec, settings: Settings) -> None:
        super().__init__(spec, settings)
        self.prefix = self.read_parameters(EchoParameters).prefix
        self.delay_s = EchoSettings().delay_s

    def info(self) -> EngineInfo:
        return EngineInfo(kind=self.kind)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        text = self.prefix + (request.prompt or "")
        yield Chunk(text)
        yield Chunk("", finish_reason="stop", usage=Usage(len(text.split()), 1))


@pytest.fixture
def echo_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``echo`` as if a package declared it in the ``modelyard.engines`` entry points."""
    installed = kinds.entry_points(group=kinds.GROUP)
    echo = EntryPoint("echo", f"{__name__}:EchoEngine", kinds.GROUP)
    points = EntryPoints([*installed, echo])

    def entry_points(group: str, name: str | None = None) -> EntryPoints:
        assert group == kinds.GROUP
        return points if name is None else points.select(name=name)

    monkeypatch.setattr(kinds, "entry_points", entry_points)


def test_capabilities_declare_what_each_kind_does_today() -> None:
    generates = {"chat", "completion", "streaming"}
    # The embedded engine constrains sampling with a grammar made from the JSON schema,
    # and computes logprobs, n choices and logit bias itself (llamacpp/choices.py).
    assert set(engine_class("llamacpp").capabilities.names()) == generates | {
        "seed",
        "structured_output",
        "tools",
        "logprobs",
        "multiple_choices",
        "logit_bias",
    }
    # An upstream forwards the request as its client sent it: it has what OpenAI's API has.
    assert set(engine_class("upstream").capabilities.names()) == {
        field.name for field in dataclasses.fields(Capabilities)
    } - {"embeddings", "classification"}
    assert set(engine_class("scripted").capabilities.names()) == generates
    assert engine_class("sentence-transformers").capabilities.names() == ["embeddings"]
    # A classifier answers with a label: its logprobs are the labels' probabilities.
    assert set(engine_class("classifier").capabilities.names()) == {
        *("chat", "completion", "streaming", "classification", "logprobs", "seed")
    }
    for kind in set(BUILT_IN) - {"upstream", "llamacpp", "classifier"}:
        capabilities = engine_class(kind).capabilities
        assert not (capabilities.tools or capabilities.logprobs)
        assert not (capabilities.multiple_choices or capabilities.image_input)
    assert not engine_class("llamacpp").capabilities.image_input
    assert not engine_class("scripted").capabilities.structured_output


def test_built_in_kinds_are_the_packages_own_entry_points() -> None:
    assert builtin_kinds() == BUILT_IN


def test_kind_settings_keep_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LlamaCppSettings().n_ctx == 2048
    monkeypatch.setenv("MODELYARD_LLAMACPP_N_CTX", "512")
    monkeypatch.setenv("MODELYARD_LLAMACPP_PREFIX_CACHE", "false")
    monkeypatch.setenv("MODELYARD_UPSTREAM_MAX_CONNECTIONS", "7")
    assert (LlamaCppSettings().n_ctx, LlamaCppSettings().prefix_cache) == (512, False)
    assert UpstreamSettings().max_connections == 7
    assert LlamaCppSettings.variable("n_ctx") == "MODELYARD_LLAMACPP_N_CTX"


def test_kind_settings_read_the_toml_file_under_the_kinds_prefix(
    modelyard_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modelyard_home.mkdir(parents=True, exist_ok=True)
    (modelyard_home / "modelyard.toml").write_text(
        "llamacpp_threads = 3\nllamacpp_max_waiting = 5\nupstream_timeout_s = 9.5\n"
    )
    monkeypatch.setenv("MODELYARD_LLAMACPP_MAX_WAITING", "6")  # the environment wins
    tuning = LlamaCppSettings()
    assert (tuning.threads, tuning.max_waiting) == (3, 6)
    assert UpstreamSettings().timeout_s == 9.5
    assert not hasattr(Settings(), "llamacpp_threads")


def test_a_version_parameter_overrides_the_kind_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_LLAMACPP_N_CTX", "512")
    monkeypatch.setenv("MODELYARD_LLAMACPP_MAX_WAITING", "3")
    engine_type = engine_class("llamacpp")
    spec = EngineSpec("m", 1, "llamacpp", "/nowhere.gguf", {"max_waiting": 0, "threads": 2})
    engine = engine_type(spec, Settings())
    info = engine.info()
    assert (info.context_length, info.details["threads"]) == (512, 2)
    assert engine.limits.max_waiting == 0  # type: ignore[attr-defined]


def test_info_details_are_the_kinds_typed_fields() -> None:
    engine = engine_class("upstream")(
        EngineSpec("up", 1, "upstream", "http://h/v1", {"model": "tiny", "context_length": 64}),
        Settings(),
    )
    info = engine.info()
    assert info.details == {"base_url": "http://h/v1", "model": "tiny"}
    state = EngineState("up", 1, "upstream", "ready", None, info, engine.capabilities)
    assert state.as_json() == {
        "model": "up",
        "version": 1,
        "kind": "upstream",
        "state": "ready",
        "error": None,
        "info": {
            "kind": "upstream",
            "context_length": 64,
            "chat_template": None,
            "size_bytes": None,
            "details": {"base_url": "http://h/v1", "model": "tiny"},
        },
        "capabilities": engine_class("upstream").capabilities.names(),
    }


@pytest.mark.anyio
async def test_a_third_party_kind_is_checked_and_served_like_a_built_in(
    echo_installed: None, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo = VersionCreate(engine_kind="echo", artifact_uri="echo:", parameters={"prefix": "> "})
    assert registry.add_version("m", echo, actor="ann").parameters == {"prefix": "> "}
    typo = VersionCreate(engine_kind="echo", artifact_uri="echo:", parameters={"prefx": "> "})
    with pytest.raises(InvalidRegistration, match=r"unknown parameter 'prefx'.*prefix"):
        registry.add_version("m", typo, actor="ann")

    monkeypatch.setenv("MODELYARD_ECHO_DELAY_S", "0.5")
    engine = engine_class("echo")(EngineSpec("m", 1, "echo", "echo:", {"prefix": "> "}), Settings())
    assert isinstance(engine, EchoEngine) and engine.delay_s == 0.5
    chunks = [c async for c in engine.generate(GenerationRequest(prompt="hi"))]
    assert "".join(c.text for c in chunks) == "> hi"


def test_an_uninstalled_kind_is_refused_at_registration(registry: Registry) -> None:
    ghost = VersionCreate(engine_kind="ghost", artifact_uri="ghost:")
    with pytest.raises(InvalidRegistration, match="unknown engine kind 'ghost'; installed"):
        registry.add_version("m", ghost, actor="ann")
    assert registry.list_models() == []


def test_docs_list_every_built_in_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    status = Cog().main(["cog", "--check", str(ROOT / "docs/engines.md")])
    assert status == 0, "docs/engines.md is stale: run .venv/bin/cog -r docs/engines.md"
    settings_page = (ROOT / "docs/settings.md").read_text()
    for kind in builtin_kinds():
        settings = engine_class(kind).Settings
        for name in settings.model_fields:
            assert f"`{settings.variable(name)}`" in settings_page
