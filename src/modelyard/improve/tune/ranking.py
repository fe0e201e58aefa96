"""Which trial is best and how the best grew: only complete, feasible trials count."""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.improve.tune.protocol import HistoryPoint, TrialOut


def counts(trial: TrialOut) -> bool:
    """A trial that may be the best: complete, within every bound, with a value."""
    return trial.state == "complete" and bool(trial.feasible) and trial.value is not None


def best_of(trials: Sequence[TrialOut], higher_is_better: bool) -> TrialOut | None:
    """The best trial that counts (the earliest of equals), or None."""
    sign = 1.0 if higher_is_better else -1.0
    eligible = [t for t in trials if counts(t)]
    if not eligible:
        return None
    return max(eligible, key=lambda t: (sign * float(t.value or 0.0), -t.number))


def history_of(trials: Sequence[TrialOut], higher_is_better: bool) -> list[HistoryPoint]:
    """Each trial's value and the best value up to it."""
    points: list[HistoryPoint] = []
    best: float | None = None
    for trial in sorted(trials, key=lambda t: t.number):
        if counts(trial):
            value = float(trial.value or 0.0)
            if best is None or (value > best if higher_is_better else value < best):
                best = value
        points.append(
            HistoryPoint(number=trial.number, value=trial.value, feasible=trial.feasible, best=best)
        )
    return points
