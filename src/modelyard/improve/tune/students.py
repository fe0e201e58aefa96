"""Students whose hyper-parameters a study searches: a trainer, registered under a name,
makes the student a trial's values describe and names the model the trial then evaluates.
The space's ``student.trainer`` picks one and ``student.options`` are its fixed settings.

Built in: ``classifier``, a `classifier` student distilled from a labelled dataset version
(``improve/distil``) with the trial's values (``c``, ``max_iter``, ``class_weight``,
``holdout``, ``seed``), registered as the next version of the options' ``model``. Other
trainers plug in through ``TuneJobs(trainers=...)`` and ``StudyRunner(trainers=...)``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from modelyard.improve.distil.protocol import DistilRequest
from modelyard.improve.tune.errors import InvalidStudy
from modelyard.store import Store

if TYPE_CHECKING:
    import httpx


class StudentTrainer(Protocol):
    async def model_for(
        self,
        client: httpx.AsyncClient,
        options: Mapping[str, Any],
        params: Mapping[str, Any],
        *,
        study: int,
        trial: int,
    ) -> str:
        """The public model name (``name@version``) of the student ``params`` make, with
        ``client`` (the study's, as its caller) for what it asks the server."""
        ...


Trainers = Mapping[str, StudentTrainer]


@dataclass(frozen=True)
class ClassifierTrainer:
    """Distils a `classifier` student per trial: the options are a distillation's request
    (``dataset``, ``model``, ``label_field``, ``input_field``, ``embedding_model``, ...),
    the trial's values its hyper-parameters."""

    store: Store
    home: Path
    # The server's "see new versions now" (its routing refresher); without it (the CLI's
    # client, a remote server) the trainer waits until the server answers for the student.
    refresh: Callable[[], Awaitable[None]] | None = None
    wait_s: float = 30.0

    async def model_for(
        self,
        client: httpx.AsyncClient,
        options: Mapping[str, Any],
        params: Mapping[str, Any],
        *,
        study: int,
        trial: int,
    ) -> str:
        # imported here: numpy and scikit-learn come with it, and a server that never
        # tunes a student does not load them (issue 8)
        from modelyard.improve.distil.distillation import distil, start_distillation

        notes = f"tune study {study}, trial {trial}"
        request = _request({**options, **params, "notes": notes}, set(params))
        started = await asyncio.to_thread(
            start_distillation, self.store, request, f"tune study {study}"
        )
        out = await distil(client, self.store, self.home, started.id)
        if out.status != "done" or out.version is None:
            raise InvalidStudy(
                f"trial {trial}: distillation {out.id} failed: {out.message}",
                param="space.student.options",
            )
        model = f"{out.model}@{out.version}"
        await self._served(client, model)
        return model

    async def _served(self, client: httpx.AsyncClient, model: str) -> None:
        """Until the server routes ``model``: at once with a refresher, else by asking it
        (a one-token request every half second; 404 while its routes are older)."""
        if self.refresh is not None:
            await self.refresh()
            return
        body = {"model": model, "messages": [{"role": "user", "content": "."}], "max_tokens": 1}
        for _ in range(max(1, int(self.wait_s / 0.5))):
            if (await client.post("/v1/chat/completions", json=body)).status_code != 404:
                return
            await asyncio.sleep(0.5)
        raise InvalidStudy(
            f"the server does not serve {model} after {self.wait_s:g} s", param="space.student"
        )


def _request(fields: dict[str, Any], searched: set[str]) -> DistilRequest:
    try:
        return DistilRequest.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        section = "params" if where.split(".")[0] in searched else "options"
        raise InvalidStudy(
            f"the classifier trainer: {where}: {first['msg']}",
            param=f"space.student.{section}.{where}",
        ) from error


def builtin_trainers(
    store: Store, home: Path, refresh: Callable[[], Awaitable[None]] | None = None
) -> dict[str, StudentTrainer]:
    """The trainers every server and the CLI have."""
    return {"classifier": ClassifierTrainer(store, home, refresh)}
