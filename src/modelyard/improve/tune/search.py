"""The sampler's side of a study: Optuna's TPE over the space, and the parameters'
importances. CPU work: callers run it on a worker thread.

An Optuna study is rebuilt from the stored trials whenever it is asked, so nothing the
search knows lives only in memory, and each trial's sampler is seeded with the study's seed
and the trial's number: a study resumed after an interruption asks what it would have asked
had it never stopped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelyard.improve.tune.protocol import (
    CategoricalParam,
    FloatRange,
    Importances,
    IntRange,
    StudyRequest,
    TrialOut,
)
from modelyard.improve.tune.space import FEW_SHOT, SAMPLING, STUDENT, SYSTEM, TEMPLATE, Objective

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

EVALUATOR = "PED-ANOVA"
MIN_IMPORTANCE_TRIALS = 5  # below this, what set the best trials apart is noise


def _optuna() -> Any:
    """Optuna, imported on first use (it brings numpy: a server that never tunes does not
    load it), its per-trial log lines off: a study rebuilt on every ask would repeat them."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(request: StudyRequest) -> dict[str, BaseDistribution]:
    """The space as Optuna's distributions, by parameter name."""
    space = request.space
    out: dict[str, BaseDistribution] = {}
    for name in SAMPLING:
        bounds = getattr(space, name)
        if bounds is not None:
            out[name] = _distribution(bounds)
    for name, variants in ((TEMPLATE, space.templates), (SYSTEM, space.systems)):
        if variants:  # variant 0 is the task's own
            choices: list[Any] = list(range(1 + len(variants)))
            out[name] = _distribution(CategoricalParam(type="categorical", choices=choices))
    if space.few_shot is not None:
        out[FEW_SHOT] = _distribution(space.few_shot)
    if space.student is not None:
        for name, param in space.student.params.items():
            out[f"{STUDENT}{name}"] = _distribution(param)
    return out


def _distribution(bounds: FloatRange | IntRange | CategoricalParam) -> BaseDistribution:
    kinds = _optuna().distributions
    if isinstance(bounds, CategoricalParam):
        return kinds.CategoricalDistribution(list(bounds.choices))  # type: ignore[no-any-return]
    if isinstance(bounds, IntRange):
        high = bounds.high - (bounds.high - bounds.low) % bounds.step  # on the step's grid
        return kinds.IntDistribution(bounds.low, high, step=bounds.step)  # type: ignore[no-any-return]
    return kinds.FloatDistribution(bounds.low, bounds.high, log=bounds.log)  # type: ignore[no-any-return]


def defaults(request: StudyRequest, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """The task's own settings, each where the space holds it: the first trial's."""
    task = request.task
    own: dict[str, Any] = {name: task.generation.get(name) for name in SAMPLING}
    own.update({TEMPLATE: 0, SYSTEM: 0, FEW_SHOT: task.prompt.few_shot})
    return {
        name: value
        for name, value in own.items()
        if name in space and value is not None and _holds(space[name], value)
    }


def _holds(distribution: BaseDistribution, value: Any) -> bool:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(distribution, IntDistribution):
        on_grid = value == int(value) and (int(value) - distribution.low) % distribution.step == 0
        return on_grid and distribution.low <= value <= distribution.high
    if isinstance(distribution, FloatDistribution):
        return distribution.low <= value <= distribution.high
    return False


def ask(
    request: StudyRequest, objective: Objective, trials: Sequence[TrialOut], number: int
) -> tuple[dict[str, Any], bool]:
    """Trial ``number``'s parameters, and whether they are the task's own settings (the
    first trial's, where the space holds all of them)."""
    optuna = _optuna()
    space = distributions(request)
    study = replayed(objective, space, trials)
    own = defaults(request, space) if number == 0 else {}
    if own:
        study.enqueue_trial(own)
    study.sampler = optuna.samplers.TPESampler(
        seed=(request.seed * 1_000_003 + number) % 2**32,
        n_startup_trials=request.startup_trials,
    )
    trial = study.ask(space)
    return dict(trial.params), bool(own) and set(own) == set(space)


def replayed(
    objective: Objective, space: dict[str, BaseDistribution], trials: Sequence[TrialOut]
) -> optuna.Study:
    """An in-memory Optuna study holding the finished ``trials``, their constraints too."""
    optuna = _optuna()
    states = optuna.trial.TrialState
    study = optuna.create_study(direction=objective.direction)
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == "running":
            continue
        params = {name: value for name, value in trial.params.items() if name in space}
        complete = trial.state == "complete"
        study.add_trial(
            optuna.trial.create_trial(
                state=states.COMPLETE if complete else states.FAIL,
                value=trial.value if complete else None,
                params=params,
                distributions={name: space[name] for name in params},
                constraints=dict(trial.constraints) if complete and trial.constraints else None,
            )
        )
    return study  # type: ignore[no-any-return]


def importances(
    request: StudyRequest, objective: Objective, trials: Sequence[TrialOut]
) -> Importances:
    """How much each parameter mattered to reaching the best values (PED-ANOVA over the
    complete trials), or why that cannot be told yet."""
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    reason = _too_few(complete, objective)
    if reason is not None:
        return Importances(evaluator=EVALUATOR, trials=len(complete), values=None, reason=reason)
    optuna = _optuna()
    space = distributions(request)
    study = replayed(objective, space, complete)
    values = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), params=sorted(space)
    )
    shares = {name: float(share) for name, share in values.items()}
    return Importances(evaluator=EVALUATOR, trials=len(complete), values=shares, reason=None)


def _too_few(complete: Sequence[TrialOut], objective: Objective) -> str | None:
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return (
            f"importances need at least {MIN_IMPORTANCE_TRIALS} complete trials; "
            f"this study has {len(complete)}"
        )
    values = [float(t.value or 0.0) for t in complete]
    best = max(values) if objective.higher_is_better else min(values)
    if all(value == best for value in values):
        return f"every complete trial scored {best:g}: nothing sets the best trials apart"
    return None
