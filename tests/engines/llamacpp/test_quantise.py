"""llama.cpp's quantiser on the packaged SmolLM2 (Q4_1): each type written and read back,
a failure leaving no file, and the probe's measurements of one variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.bootstrap import smollm2_path
from modelyard.engines.llamacpp.probe import main as probe_main
from modelyard.engines.llamacpp.quantise import (
    METHODS,
    QuantiseError,
    file_type,
    is_quantised,
    quantise,
    unknown_methods,
)


def test_each_type_is_written_and_its_metadata_names_it(tmp_path: Path) -> None:
    source = smollm2_path()
    assert file_type(source) == "Q4_1" and is_quantised("Q4_1")
    sizes = {}
    for method in ("Q8_0", "Q4_0"):
        target = tmp_path / f"{method}.gguf"
        quantise(source, target, method, threads=2)
        assert file_type(target) == method
        sizes[method] = target.stat().st_size
        assert not (tmp_path / f"{method}.gguf.partial").exists()
    # 8.5 bits a weight against 4.5 (4 bits and a scale per block of 32): Q8_0 is larger.
    assert sizes["Q8_0"] > 1.3 * sizes["Q4_0"]
    assert sizes["Q4_0"] < source.stat().st_size  # Q4_1 also keeps a minimum per block


def test_a_failed_quantisation_leaves_nothing_behind(tmp_path: Path) -> None:
    not_a_model = tmp_path / "broken.gguf"
    not_a_model.write_bytes(b"GGUF" + b"\0" * 64)
    target = tmp_path / "out.gguf"
    with pytest.raises(QuantiseError, match=r"could not quantise broken\.gguf to Q8_0"):
        quantise(not_a_model, target, "Q8_0")
    assert not target.exists() and not (tmp_path / "out.gguf.partial").exists()
    with pytest.raises(QuantiseError, match="unknown quantisation type 'Q9'"):
        quantise(smollm2_path(), target, "Q9")
    assert unknown_methods(["Q8_0", "Q9", "IQ2_XXS"]) == ["Q9", "IQ2_XXS"]
    assert "IQ2_XXS" not in METHODS  # needs an importance matrix


def test_the_probe_measures_speed_memory_and_perplexity(tmp_path: Path) -> None:
    texts = ["The cat sat on the mat.", "Paris is the capital of France.", "x"]
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "gguf": str(smollm2_path()),
                "texts": texts,
                "streams": [1, 2],
                "max_tokens": 12,
                "repeats": 1,
            }
        )
    )
    result_path = tmp_path / "result.json"
    assert probe_main([str(spec), str(result_path)]) == 0
    result = json.loads(result_path.read_text())
    assert result["file_type"] == "Q4_1" and result["size_bytes"] == smollm2_path().stat().st_size
    assert result["parameters"] > 100_000_000 and result["load_s"] > 0 and result["rss_mb"] > 50
    levels = {level["streams"]: level for level in result["throughput"]}
    assert set(levels) == {1, 2}
    assert levels[2]["completion_tokens"] > levels[1]["completion_tokens"] > 0
    assert all(level["aggregate_tokens_per_s"] > 0 for level in levels.values())
    # "x" is one token after the start token: nothing to predict, so it is not counted.
    nll = result["text_nll"]
    assert len(nll) == 3 and nll[2] is None and all(value > 0 for value in nll[:2])
    assert result["perplexity_texts"] == 2
    # A natural English sentence is far likelier than a uniform guess over 49,152 tokens.
    assert 1 < result["perplexity"] < 1000
