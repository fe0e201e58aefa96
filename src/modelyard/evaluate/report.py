"""Run reports: metrics, per-version and per-category breakdowns, latency, worst examples,
and facts about the versions that served."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from modelyard.evaluate.metrics import metric
from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.evaluate.runner import score
from modelyard.evaluate.tasks import Task
from modelyard.registry import Registry, RegistryError
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

WORST = 10


def task_of(spec: dict[str, Any]) -> Task:
    """The task a run ran, from its stored spec."""
    dropped = ("indices", "seed", "facts", "train_overlap", "error", "item_attributes", "twins")
    return Task.model_validate({k: v for k, v in spec.items() if k not in dropped})


def request_costs(store: Store, request_ids: list[str]) -> dict[str, Any]:
    """Cost, energy and carbon of a run's requests, from the request log of this store
    (a run against another server's URL finds none here)."""
    totals = {"cost": 0.0, "energy_wh": 0.0, "carbon_g": 0.0, "logged": 0}
    t = RequestLogRow
    with store.session() as session:
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start : start + 500]
            row = session.execute(
                select(
                    func.sum(t.cost), func.sum(t.energy_wh), func.sum(t.carbon_g), func.count()
                ).where(t.id.in_(chunk))
            ).one()
            totals["cost"] += float(row[0] or 0)
            totals["energy_wh"] += float(row[1] or 0)
            totals["carbon_g"] += float(row[2] or 0)
            totals["logged"] += int(row[3] or 0)
    return totals


def report(
    run: EvalRunOut,
    items: list[EvalItemOut],
    registry: Registry,
    task: Task,
    costs: dict[str, Any] | None = None,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON report of a run (what the HTML renders; of the answers so far while it
    runs). ``facts``: what the server said of the versions when the run ended (the run's
    stored ``spec["facts"]``)."""
    import numpy as np  # not at module level: the server imports this module (issue 8)

    facts = facts or {}
    recorded: dict[str, dict[str, Any]] = facts.get("versions") or {}
    latencies = np.array([i.latency_ms for i in items if i.error is None] or [0.0])
    tokens = sum(i.completion_tokens for i in items)
    seconds = float(sum(i.latency_ms for i in items if i.error is None)) / 1000
    first = task.metrics[0]
    wrong = _worst_first(task, items)
    by_version: dict[str, list[EvalItemOut]] = defaultdict(list)
    for item in items:
        by_version[item.version or "-"].append(item)
    return {
        "run": run.model_dump(mode="json"),
        "metrics": {name: m["value"] for name, m in run.metrics.items()},
        "details": {name: m.get("details", {}) for name, m in run.metrics.items()},
        "errors": sum(i.error is not None for i in items),
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)),
            "max": float(latencies.max()),
            "histogram": np.histogram(latencies, bins=10)[0].tolist(),
            "edges": [float(e) for e in np.histogram(latencies, bins=10)[1]],
        },
        "by_version": {
            version: {
                "items": len(group),
                "metrics": {name: m["value"] for name, m in score(task, group).items()},
                "latency_p50_ms": float(np.median([i.latency_ms for i in group])),
            }
            for version, group in sorted(by_version.items())
        },
        "tokens_per_second": tokens / seconds if seconds else None,
        "costs": costs,
        "worst_by": first.name,
        "worst": [w.model_dump(mode="json") for w in wrong[:WORST]],
        "model_facts": {
            v: {**model_facts(registry, v), **recorded.get(v, {})} for v in run.versions
        },
        "server_peak_rss_bytes": facts.get("server_peak_rss_bytes"),
    }


def _worst_first(task: Task, items: list[EvalItemOut]) -> list[EvalItemOut]:
    """The items that failed or scored below full marks by the task's first metric, worst
    first (none while a run has answered nothing)."""
    if not items:
        return []
    first = task.metrics[0]
    scores = (
        metric(first.name, **first.options)
        .compute([i.extracted for i in items], [i.reference for i in items])
        .per_item
    )
    ranked = sorted(
        zip(scores or [float(_correct(i)) for i in items], items, strict=True), key=lambda p: p[0]
    )
    return [item for value, item in ranked if item.error is not None or value < 1.0]


def _correct(item: EvalItemOut) -> bool:
    """The extracted answer equals a reference exactly (for metrics without item scores)."""
    refs = item.reference if isinstance(item.reference, list) else [item.reference]
    return item.error is None and any(item.extracted == str(r) for r in refs)


def model_facts(registry: Registry, version: str) -> dict[str, Any]:
    """What the registry knows of a version: engine, artifact size on disk, quantisation."""
    model, _, number = version.partition("@")
    try:
        out = registry.version(model, int(number))
    except (RegistryError, ValueError):
        return {}
    facts: dict[str, Any] = {"engine": out.engine_kind, "artifact": out.artifact_uri}
    path = Path(out.artifact_uri)
    if path.is_file():
        facts["size_bytes"] = path.stat().st_size
        quant = [p for p in path.stem.split(".") if p.upper().startswith(("Q", "F16", "BF16"))]
        if quant:
            facts["quantisation"] = quant[-1]
    elif path.is_dir():
        facts["size_bytes"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return facts
