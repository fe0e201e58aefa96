"""A study's space read against its task: the objective, the settings a trial's parameters
stand for, the task a trial runs, and the checks made before any trial does."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.evaluate.metrics import METRICS, MetricOptionError, UnknownMetric, metric
from modelyard.evaluate.tasks import Item, Task, TaskError
from modelyard.evaluate.tasks.loading import check
from modelyard.improve.tune.errors import InvalidStudy
from modelyard.improve.tune.protocol import StudyRequest, TrialSettings

SAMPLING = ("temperature", "top_p", "max_tokens")
TEMPLATE, SYSTEM, FEW_SHOT = "template", "system", "few_shot"
STUDENT = "student."  # the prefix of a student hyper-parameter's name
PRODUCTION = "production"  # the alias a plain route name serves (routing's DEFAULT_ALIAS)


@dataclass(frozen=True)
class Objective:
    """The run metric a study optimises, and which way."""

    key: str
    higher_is_better: bool

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self.higher_is_better else "minimize"


def objective_of(task: Task, name: str | None) -> Objective:
    """``name`` (a metric of ``task``, by its name or its result's; or ``judge:NAME``), or
    the task's first metric; InvalidStudy naming ``objective`` otherwise."""
    if name is not None and name.startswith("judge:"):
        if name.removeprefix("judge:") not in {judge.name for judge in task.judges}:
            raise InvalidStudy(f"objective '{name}': the task has no such judge", param="objective")
        return Objective(name, True)
    for spec in task.metrics:
        try:
            measure = metric(spec.name, **spec.options)
        except (UnknownMetric, MetricOptionError) as error:
            raise InvalidStudy(str(error), param="task.metrics") from error
        if name is None or name in (spec.name, measure.name):
            higher = spec.higher_is_better
            return Objective(measure.name, measure.higher_is_better if higher is None else higher)
    known = ", ".join(spec.name for spec in task.metrics)
    raise InvalidStudy(
        f"objective '{name}' is not a metric of the task (it has: {known})", param="objective"
    )


def pinned(model: str) -> str:
    """``model`` as trials query it: a plain route name means its production alias."""
    return model if (":" in model or "@" in model) else f"{model}:{PRODUCTION}"


def production_of(model: str) -> str:
    """The production alias of the route ``model`` names (``chat@3`` -> ``chat:production``)."""
    return f"{model.partition('@')[0].partition(':')[0]}:{PRODUCTION}"


def settings_for(request: StudyRequest, params: Mapping[str, Any], model: str) -> TrialSettings:
    """The settings ``params`` stand for: the task's own wherever they choose nothing."""
    task, space = request.task, request.space
    templates = [task.prompt.template, *space.templates]
    systems = [task.prompt.system, *(text or None for text in space.systems)]
    generation = {**task.generation, **{k: params[k] for k in SAMPLING if k in params}}
    return TrialSettings(
        model=model,
        system=systems[int(params.get(SYSTEM, 0))],
        template=templates[int(params.get(TEMPLATE, 0))],
        few_shot=int(params.get(FEW_SHOT, task.prompt.few_shot)),
        generation=generation,
        student={k.removeprefix(STUDENT): v for k, v in params.items() if k.startswith(STUDENT)},
    )


def configured(task: Task, settings: TrialSettings) -> Task:
    """``task`` with a trial's prompt and sampling fields (its name, data and metrics kept,
    so the runs of a study compare item by item)."""
    prompt = task.prompt.model_copy(
        update={
            "system": settings.system,
            "template": settings.template,
            "few_shot": settings.few_shot,
        }
    )
    return task.model_copy(update={"prompt": prompt, "generation": dict(settings.generation)})


def check_study(
    request: StudyRequest,
    search: list[Item],
    holdout: list[Item],
    trainers: Collection[str],
) -> Objective:
    """Everything a trial could fail on, checked before any runs: the task and each
    variant against the items, the few-shot range, the student's trainer, the objective."""
    task, space = request.task, request.space
    _checked(task, search, "task")
    _checked(task, holdout, "holdout_split")
    for index in range(len(space.templates)):
        variant = configured(task, settings_for(request, {TEMPLATE: index + 1}, ""))
        _checked(variant, search, f"space.templates.{index}")
    for index in range(len(space.systems)):
        variant = configured(task, settings_for(request, {SYSTEM: index + 1}, ""))
        _checked(variant, search, f"space.systems.{index}")
    fewest = min(len(search), len(holdout))
    if space.few_shot is not None and space.few_shot.high >= fewest:
        raise InvalidStudy(
            f"space.few_shot.high {space.few_shot.high} needs more items: the searched and "
            f"held-out items number {len(search)} and {len(holdout)}",
            param="space.few_shot.high",
        )
    if space.student is not None and space.student.trainer not in trainers:
        have = ", ".join(sorted(trainers)) or "none"
        raise InvalidStudy(
            f"no student trainer '{space.student.trainer}' on this server (it has: {have})",
            param="space.student.trainer",
        )
    return objective_of(task, request.objective)


def _checked(task: Task, items: list[Item], param: str) -> None:
    try:
        check(task, items, set(METRICS))
    except TaskError as error:
        raise InvalidStudy(f"{param}: {error}", param=param) from error
