"""Eval tasks in YAML: a dataset, a prompt template, answer extraction, metrics.

``load_task`` reads and checks a task completely — file, dataset, template fields, target,
filters, metric names — so a bad task fails before any request is sent.
"""

from modelyard.evaluate.tasks.filters import apply_filters, compile_filters
from modelyard.evaluate.tasks.loading import Item, TaskError, load_task
from modelyard.evaluate.tasks.render import few_shot_pool, messages_for, reference_of
from modelyard.evaluate.tasks.spec import Task

__all__ = [
    "Item",
    "Task",
    "TaskError",
    "apply_filters",
    "compile_filters",
    "few_shot_pool",
    "load_task",
    "messages_for",
    "reference_of",
]
