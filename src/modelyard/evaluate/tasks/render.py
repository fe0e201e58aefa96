"""A task item as the chat messages sent to the model."""

from __future__ import annotations

from typing import Any

from modelyard.evaluate.tasks.loading import Item, environment
from modelyard.evaluate.tasks.spec import Task


def reference_of(task: Task, item: Item) -> str | list[str]:
    """The item's reference: a string, or the list of acceptable strings."""
    value = item[task.target]
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def messages_for(task: Task, item: Item, examples: list[Item]) -> list[dict[str, Any]]:
    """System prompt, then ``task.prompt.few_shot`` worked examples (user and assistant
    turns), then the item itself."""
    env = environment()
    template = env.from_string(task.prompt.template)
    answer = env.from_string(task.prompt.few_shot_answer) if task.prompt.few_shot_answer else None
    messages: list[dict[str, Any]] = []
    if task.prompt.system:
        messages.append(
            {"role": "system", "content": env.from_string(task.prompt.system).render(item)}
        )
    for example in examples[: task.prompt.few_shot]:
        reference = reference_of(task, example)
        shown = (
            answer.render(example)
            if answer
            else (reference[0] if isinstance(reference, list) else reference)
        )
        messages.append({"role": "user", "content": template.render(example)})
        messages.append({"role": "assistant", "content": shown})
    messages.append({"role": "user", "content": template.render(item)})
    return messages


def few_shot_pool(task: Task, items: list[Item], index: int) -> list[Item]:
    """Worked examples for item ``index``: the first items of the dataset but itself."""
    if not task.prompt.few_shot:
        return []
    return [item for i, item in enumerate(items[: task.prompt.few_shot + 1]) if i != index]
