"""The compression table's pure parts: the Pareto front over quality, size and speed, the
gate against the parent, and the cells the CLI and the console show."""

from __future__ import annotations

from typing import Any

from modelyard.evaluate.gates import GateRule
from modelyard.improve.compress.protocol import VariantOut
from modelyard.improve.compress.table import axes, display, gate_verdict, pareto_flags


def row(version: int, method: str, **measurements: Any) -> VariantOut:
    role = "parent" if version == 1 else "variant"
    return VariantOut(role=role, version=version, method=method, measurements=measurements)


def test_the_front_keeps_rows_no_other_beats_on_every_axis() -> None:
    rows = [
        row(1, "Q4_1", perplexity=70.0, size_mb=98.0, tokens_per_s_1=100.0),
        row(2, "Q8_0", perplexity=70.1, size_mb=145.0, tokens_per_s_1=80.0),  # beaten by 1
        row(3, "Q2_K", perplexity=90.0, size_mb=88.0, tokens_per_s_1=95.0),  # smallest
        row(4, "Q4_K_M", perplexity=80.0, size_mb=105.0, tokens_per_s_1=120.0),  # fastest
        row(5, "copy", perplexity=70.0, size_mb=98.0, tokens_per_s_1=100.0),  # equal to 1
    ]
    assert pareto_flags("llamacpp", rows) == [True, False, True, True, True]
    assert axes("llamacpp", rows) == [
        ("quality", "perplexity", False),
        ("size", "size_mb", False),
        ("speed", "tokens_per_s_1", True),
    ]


def test_an_axis_a_row_lacks_is_left_out_of_the_front() -> None:
    rows = [row(1, "Q4_1", size_mb=98.0, tokens_per_s_1=100.0), row(2, "Q8_0", size_mb=145.0)]
    assert axes("llamacpp", rows) == [("size", "size_mb", False)]
    assert pareto_flags("llamacpp", rows) == [True, False]
    embedding = [
        row(1, "float32", cosine_mean=1.0, accuracy=0.9, size_mb=90.0, texts_per_s=200.0),
        row(2, "int8", cosine_mean=0.97, accuracy=0.89, size_mb=23.0, texts_per_s=400.0),
    ]
    assert axes("sentence-transformers", embedding)[0] == ("quality", "accuracy", True)
    assert pareto_flags("sentence-transformers", embedding) == [True, True]


def test_the_gate_compares_a_variant_with_its_parent() -> None:
    parent = row(1, "Q4_1", perplexity=70.0, size_mb=98.0)
    variant = row(2, "Q2_K", perplexity=80.0, size_mb=88.0)
    rules = [
        GateRule(metric="perplexity", greater_is_better=False, max_relative_drop=0.1),
        GateRule(metric="size_mb", greater_is_better=False, min_value=90),
    ]
    verdict = gate_verdict(rules, variant, parent)
    assert verdict is not None and verdict["passed"] is False
    passed = [check["passed"] for check in verdict["checks"]]
    assert passed == [False, True], verdict  # 14.3 % worse perplexity; 88 MB under 90
    assert "perplexity worsened by 14.2857%" in verdict["checks"][0]["reason"]
    assert gate_verdict([], variant, parent) is None


def test_the_cells_show_the_paired_comparison_and_the_verdicts() -> None:
    parent = row(1, "Q4_1", perplexity=70.0, size_mb=98.0, tokens_per_s_1=100.0)
    variant = row(2, "Q2_K", perplexity=80.0, size_mb=88.0, tokens_per_s_1=101.0)
    variant = variant.model_copy(
        update={
            "comparison": {
                "nll_per_token": {
                    "perplexity_ratio": 1.15,
                    "ci_low": 0.1,
                    "ci_high": 0.18,
                    "difference": 0.14,
                }
            },
            "gate": {"passed": False, "checks": []},
            "pareto": True,
        }
    )
    headers, cells = display("llamacpp", [parent, variant], [1])
    assert headers[5:] == ["tok/s @1", "perplexity", "vs parent", "gate", "front"]
    assert cells[0][:2] == ["1 (parent)", "Q4_1"] and cells[0][-2:] == ["", ""]
    assert cells[1][-3:] == ["ppl x1.150 [1.105, 1.197]", "fail", "yes"]
