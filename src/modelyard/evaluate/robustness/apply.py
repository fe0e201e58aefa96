"""A run's perturbation applied to its items: the prompt fields of a copy of each item are
changed (the item itself, and so its reference, stays as it is); a paraphrase is asked of
the route the perturbation names, through the same client as the run's questions.

httpx is imported by the caller that makes the client (issue 8)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from jinja2 import meta

from modelyard.errors import ModelyardError
from modelyard.evaluate.robustness.perturb import TextPerturber
from modelyard.evaluate.robustness.spec import Perturbation, perturbed_fields
from modelyard.evaluate.tasks import Item, Task, TaskError
from modelyard.evaluate.tasks.loading import environment
from modelyard.jobs import ask_chat

if TYPE_CHECKING:
    import httpx

PARAPHRASE_SYSTEM = (
    "Rewrite the user's text in other words. Keep its meaning, its language and every fact, "
    "name and number; do not answer it, do not add anything. Reply with the rewritten text only."
)
PARAPHRASE_MAX_TOKENS = 1024


def fields_to_perturb(task: Task, items: list[Item]) -> list[str]:
    """The item fields ``task.perturbation`` changes; TaskError naming the problem."""
    if task.perturbation is None:
        return []
    used = meta.find_undeclared_variables(environment().parse(task.prompt.template))
    try:
        return perturbed_fields(task.perturbation, used, task.target, set(items[0]))
    except ValueError as error:
        raise TaskError(str(error)) from error


class PerturbationFailed(ModelyardError, RuntimeError):
    """A paraphrase the run needs could not be had: the run stops (its answers so far are
    kept; ``--resume`` finishes it) rather than grade an item that was not perturbed."""

    status = 502
    code = "perturbation_failed"


class ItemPerturber:
    """Perturbs the prompt fields of a run's items; build it with ``for_task`` on a worker
    thread (a text perturbation loads its tables there)."""

    def __init__(self, perturbation: Perturbation, fields: list[str]) -> None:
        self.perturbation, self.fields = perturbation, fields
        self._text = None if perturbation.kind == "paraphrase" else TextPerturber(perturbation)

    @classmethod
    def for_task(cls, task: Task, items: list[Item]) -> ItemPerturber | None:
        if task.perturbation is None:
            return None
        return cls(task.perturbation, fields_to_perturb(task, items))

    async def perturb(self, client: httpx.AsyncClient, item: Item, index: int) -> Item:
        """A copy of ``item`` with its prompt fields perturbed (strings only);
        PerturbationFailed when a paraphrase fails."""
        changed = dict(item)
        texts = [f for f in self.fields if isinstance(item.get(f), str)]
        if self._text is not None:
            text = self._text
            for field in texts:
                changed[field] = await asyncio.to_thread(text.text, item[field], index, field)
            return changed
        route = self.perturbation.model or ""
        for field in texts:
            rewritten, error = await paraphrase(client, route, item[field])
            if error is not None:
                raise PerturbationFailed(
                    f"item {index}: the paraphrase of {field} by {route} failed: {error}"
                )
            changed[field] = rewritten
        return changed


async def paraphrase(client: httpx.AsyncClient, model: str, text: str) -> tuple[str, str | None]:
    """``text`` rewritten by ``model`` (greedy), or the error of the request."""
    reply = await ask_chat(
        client,
        {
            "model": model,
            "messages": [
                {"role": "system", "content": PARAPHRASE_SYSTEM},
                {"role": "user", "content": text},
            ],
            "temperature": 0,
            "max_tokens": min(PARAPHRASE_MAX_TOKENS, max(32, len(text))),
        },
    )
    if reply.error is not None:
        return text, reply.error
    if not reply.text.strip():
        return text, "the route answered nothing"
    return reply.text.strip(), None
