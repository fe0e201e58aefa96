"""A compression's table: which rows are on the Pareto front of quality, size and speed,
and each variant's gate verdict against its parent. Pure functions over the rows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.evaluate.gates import GateRule, evaluate_gate
from modelyard.improve.compress.protocol import VariantOut

# (metric, greater is better) of each axis, per engine kind; the first quality metric a
# row has is its quality.
QUALITY = {
    "llamacpp": (("perplexity", False),),
    "sentence-transformers": (("accuracy", True), ("cosine_mean", True)),
}
SPEED = {"llamacpp": ("tokens_per_s_1", True), "sentence-transformers": ("texts_per_s", True)}
SIZE = ("size_mb", False)


def metric_names(engine_kind: str, streams: Sequence[int], texts: bool, labels: bool) -> set[str]:
    """The numeric measurements a row of this kind has, so a gate can name only those."""
    names = {"size_mb", "load_s", "rss_mb"}
    if engine_kind == "llamacpp":
        for count in streams:
            names |= {f"tokens_per_s_{count}", f"aggregate_tokens_per_s_{count}"}
        if texts:
            names.add("perplexity")
    else:
        names.add("texts_per_s")
        if texts:
            names |= {"cosine_mean", "cosine_min"}
        if labels:
            names.add("accuracy")
    return names


def numeric(measurements: Mapping[str, Any]) -> dict[str, float]:
    """The numbers among a row's measurements (what gates and the front compare)."""
    return {
        name: float(value)
        for name, value in measurements.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def axes(engine_kind: str, rows: Sequence[VariantOut]) -> list[tuple[str, str, bool]]:
    """The axes every row has a value on, as (role, metric, greater is better): quality,
    size and speed."""
    have = [numeric(row.measurements) for row in rows]
    chosen = []
    for metric, better in QUALITY.get(engine_kind, ()):
        if all(metric in values for values in have):
            chosen.append(("quality", metric, better))
            break
    for role, (metric, better) in (("size", SIZE), ("speed", SPEED.get(engine_kind, ("", True)))):
        if metric and all(metric in values for values in have):
            chosen.append((role, metric, better))
    return chosen


def pareto_flags(engine_kind: str, rows: Sequence[VariantOut]) -> list[bool]:
    """For each row: whether no other row is at least as good on every axis and better on
    one (rows equal on every axis are all on the front)."""
    chosen = axes(engine_kind, rows)
    if not chosen:
        return [False] * len(rows)
    points = [
        [values[metric] if better else -values[metric] for _, metric, better in chosen]
        for values in (numeric(row.measurements) for row in rows)
    ]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(
            x > y for x, y in zip(a, b, strict=True)
        )

    return [
        not any(dominates(other, point) for other in points if other is not point)
        for point in points
    ]


def gate_verdict(
    rules: Sequence[GateRule], variant: VariantOut, parent: VariantOut
) -> dict[str, Any] | None:
    """The gate's verdict on a variant against its parent (None without rules)."""
    if not rules:
        return None
    result = evaluate_gate(rules, numeric(variant.measurements), numeric(parent.measurements))
    return {
        "passed": result.passed,
        "checks": [{"passed": check.passed, "reason": check.reason} for check in result.checks],
    }


def display(
    engine_kind: str, rows: Sequence[VariantOut], streams: Sequence[int]
) -> tuple[list[str], list[list[str]]]:
    """The table as the CLI and the console show it: headers, and a row of text per row."""
    headers = ["version", "method", "size MB", "load s", "RSS MB"]
    measured: list[tuple[str, str]]
    if engine_kind == "llamacpp":
        measured = []
        for count in streams:
            measured.append((f"tokens_per_s_{count}", f"tok/s @{count}"))
            if count > 1:
                measured.append((f"aggregate_tokens_per_s_{count}", f"all tok/s @{count}"))
        measured.append(("perplexity", "perplexity"))
    else:
        measured = [
            ("texts_per_s", "texts/s"),
            ("cosine_mean", "cosine mean"),
            ("cosine_min", "cosine min"),
            ("accuracy", "accuracy"),
        ]
    headers += [label for _, label in measured] + ["vs parent", "gate", "front"]
    body = []
    for row in rows:
        values = row.measurements
        cells = [
            f"{row.version}" + (" (parent)" if row.role == "parent" else ""),
            row.method,
            _cell(values.get("size_mb")),
            _cell(values.get("load_s")),
            _cell(values.get("rss_mb")),
        ]
        cells += [_cell(values.get(metric)) for metric, _ in measured]
        cells += [_versus(row), _gate(row), "yes" if row.pareto else ""]
        body.append(cells)
    return headers, body


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def _versus(row: VariantOut) -> str:
    """The paired comparison in one cell: the difference and its 95 % interval."""
    nll = row.comparison.get("nll_per_token")
    if nll:
        low, high = math.exp(nll["ci_low"]), math.exp(nll["ci_high"])
        return f"ppl x{nll['perplexity_ratio']:.3f} [{low:.3f}, {high:.3f}]"
    accuracy = row.comparison.get("accuracy")
    if accuracy:
        return (
            f"accuracy {accuracy['difference']:+.4f} "
            f"[{accuracy['ci_low']:+.4f}, {accuracy['ci_high']:+.4f}]"
        )
    return "—" if row.role == "variant" else ""


def _gate(row: VariantOut) -> str:
    if row.gate is None:
        return ""
    return "pass" if row.gate["passed"] else "fail"
