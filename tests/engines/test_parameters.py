"""Each built-in kind's parameters are checked when a version is registered: an unknown name
or a wrong type is refused with a message naming it; what the kind accepts passes."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.bootstrap import SMALL_MODEL_SAMPLING
from modelyard.config import Settings
from modelyard.engines import EngineSpec, InvalidParameters
from modelyard.engines.kinds import check_parameters, engine_class
from modelyard.engines.scripted import ScriptedEngine

PRICE = {"price": {"input_per_million": 0.15, "output_per_million": 0.6, "per_cpu_hour": 1}}

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("llamacpp", {}),
    ("llamacpp", dict(SMALL_MODEL_SAMPLING)),  # what the first start registers
    (
        "llamacpp",
        {
            "n_ctx": 512,
            "max_num_seqs": 2,
            "max_waiting": 0,
            "prefill_chunk": 32,
            "prefix_cache": False,
            "threads": 0,
            "temperature": 0,
            "top_p": 1,
            "top_k": 40,
            "min_p": 0.05,
            "repeat_penalty": 1.3,
            **PRICE,
        },
    ),
    ("upstream", {"model": "tiny"}),
    ("upstream", {"model": "tiny", "api_key_env": "KEY", "context_length": 8192, **PRICE}),
    ("sentence-transformers", {}),
    ("sentence-transformers", {"backend": "torch", "threads": 1, "max_batch": 8}),
    ("sentence-transformers", {"backend": "onnxruntime", "max_wait_ms": 0, **PRICE}),
    ("scripted", {}),
    (
        "scripted",
        {
            "replies": ["a b", "c"],
            "first_token_delay_ms": 300,
            "token_delay_ms": 1.5,
            "first_token_jitter_ms": 10,
            "fail_when_prompt_contains": "boom",
            "fail_status": 503,
            "fail_code": "upstream_error",
            "fail_after_tokens": 2,
            "fail_rate": 0.3,
            "seed": 3,
            "start_fails": True,
            "context_length": 50,
            **PRICE,
        },
    ),
]

# (kind, parameters, the parameter the message names, what it says of it)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("llamacpp", {"n_cxt": 512}, "n_cxt", "unknown parameter"),
    ("llamacpp", {"n_ctx": "512"}, "n_ctx", "valid integer"),  # strict: no numeric strings
    ("llamacpp", {"temperature": "hot"}, "temperature", "valid number"),
    ("llamacpp", {"top_p": 1.5}, "top_p", "less than or equal to 1"),
    ("llamacpp", {"prefix_cache": "yes"}, "prefix_cache", "valid boolean"),
    ("llamacpp", {"max_num_seqs": 0}, "max_num_seqs", "greater than or equal to 1"),
    ("upstream", {}, "model", "is required"),
    ("upstream", {"model": "tiny", "api_key": "sk-1"}, "api_key", "unknown parameter"),
    ("upstream", {"model": "tiny", "context_length": 0}, "context_length", "greater than"),
    ("upstream", {"model": "tiny", "temperature": 0.2}, "temperature", "unknown parameter"),
    ("sentence-transformers", {"backend": "tpu"}, "backend", "unknown embedding backend"),
    ("sentence-transformers", {"max_batch": 0}, "max_batch", "greater than or equal to 1"),
    ("sentence-transformers", {"dimensions": 128}, "dimensions", "unknown parameter"),
    ("scripted", {"replys": ["hi"]}, "replys", "unknown parameter"),
    ("scripted", {"replies": "hi"}, "replies", "valid list"),
    ("scripted", {"fail_rate": 2}, "fail_rate", "less than or equal to 1"),
    ("scripted", {"price": {"input_per_1k": 1}}, "price.input_per_1k", "unknown parameter"),
    ("scripted", {"price": {"input_per_million": -1}}, "price.input_per_million", "greater"),
]


@pytest.mark.parametrize(("kind", "parameters"), ACCEPTED)
def test_what_a_kind_accepts_passes(kind: str, parameters: dict[str, Any]) -> None:
    check_parameters(kind, parameters)


@pytest.mark.parametrize(("kind", "parameters", "name", "problem"), REFUSED)
def test_an_unknown_or_mistyped_parameter_is_refused_by_name(
    kind: str, parameters: dict[str, Any], name: str, problem: str
) -> None:
    with pytest.raises(InvalidParameters) as refused:
        check_parameters(kind, parameters)
    message = str(refused.value)
    assert f"engine kind '{kind}'" in message
    assert f"'{name}'" in message and problem in message
    accepted = ", ".join(sorted(engine_class(kind).Parameters.model_fields))
    assert f"It accepts: {accepted}" in message
    assert refused.value.status == 400


def test_every_built_in_kind_is_tested() -> None:
    tested = {kind for kind, _ in ACCEPTED} & {kind for kind, *_ in REFUSED}
    assert tested == {"llamacpp", "upstream", "sentence-transformers", "scripted"}


def test_an_engine_reads_old_parameters_leniently(caplog: pytest.LogCaptureFixture) -> None:
    """A version registered before parameters were checked still starts: an unknown name is
    dropped with a warning, a number given as a string converted."""
    old = {"replies": ["a"], "context_length": "8", "retries": 3}
    engine = ScriptedEngine(EngineSpec("m", 1, "scripted", "scripted:", old), Settings())
    assert engine.read_parameters(ScriptedEngine.Parameters).model_dump(exclude_unset=True) == {
        "replies": ["a"],
        "context_length": 8,
    }
    assert "ignoring parameters retries" in caplog.text


def test_an_engine_refuses_a_parameter_it_cannot_read() -> None:
    spec = EngineSpec("m", 1, "scripted", "scripted:", {"context_length": "long"})
    with pytest.raises(InvalidParameters, match="'context_length'"):
        ScriptedEngine(spec, Settings())
