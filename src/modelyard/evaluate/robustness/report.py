"""The robustness report of a clean run: each perturbed run of the same task, model and
items set against it, per metric the paired bootstrap interval of the difference
(perturbed minus clean) and McNemar's exact test, by ``compare``.

A perturbed run belongs to a clean run when it ran the same task (name and dataset
digest) against the same model on the same item indices; of several with one
perturbation, the newest finished one counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from modelyard.errors import ModelyardError
from modelyard.evaluate.compare import compare
from modelyard.evaluate.protocol import EvalRunOut
from modelyard.evaluate.report import task_of
from modelyard.evaluate.robustness.spec import Perturbation
from modelyard.evaluate.runs import EvalRuns
from modelyard.store.tables import EvalRunRow


class NotACleanRun(ModelyardError, ValueError):
    status = 400
    code = "not_a_clean_run"


def perturbed_runs(
    runs: EvalRuns, clean: EvalRunOut, spec: dict[str, Any]
) -> list[tuple[int, Perturbation]]:
    """The newest finished perturbed run of ``clean`` per perturbation, oldest label first."""
    t = EvalRunRow
    query = (
        select(t.id, t.spec)
        .where(
            t.task == clean.task,
            t.dataset_sha256 == clean.dataset_sha256,
            t.model == clean.model,
            t.status == "done",
            t.id != clean.id,
        )
        .order_by(t.id)
    )
    newest: dict[str, tuple[int, Perturbation]] = {}
    with runs.store.session() as session:
        for run_id, other in session.execute(query):
            raw = other.get("perturbation")
            if raw is None or other.get("indices") != spec.get("indices"):
                continue
            perturbation = Perturbation.model_validate(raw)
            newest[perturbation.label] = (run_id, perturbation)
    return sorted(newest.values(), key=lambda pair: pair[0])


def robustness_report(runs: EvalRuns, clean_id: int) -> dict[str, Any]:
    """The table of ``clean_id``'s perturbed runs (none yet: an empty table)."""
    clean, spec = runs.get(clean_id), runs.spec(clean_id)
    if spec.get("perturbation") is not None:
        label = Perturbation.model_validate(spec["perturbation"]).label
        raise NotACleanRun(
            f"run {clean_id} is itself perturbed ({label}); give the clean run of its task"
        )
    task = task_of(spec)
    clean_items = runs.items(clean_id)
    rows = []
    for run_id, perturbation in perturbed_runs(runs, clean, spec):
        run, items = runs.get(run_id), runs.items(run_id)
        compared = compare(task, clean, clean_items, run, items)
        rows.append(
            {
                "perturbation": perturbation.label,
                "spec": perturbation.model_dump(mode="json", exclude_none=True),
                "run": run_id,
                "items": compared["items"],
                "errors": sum(item.error is not None for item in items),
                "differences": compared["differences"],
                "mcnemar": compared["mcnemar"],
            }
        )
    return {
        "clean": clean.model_dump(mode="json"),
        # Each metric of the clean run, in its order, and which way is better.
        "higher_is_better": {
            name: bool(m.get("higher_is_better", True)) for name, m in clean.metrics.items()
        },
        "perturbations": rows,
    }
