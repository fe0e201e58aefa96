"""Rollouts and experiments as two kinds of release subject, and the reading half of their
JSON API, one implementation for both: ``GET /api/rollouts``, ``/api/rollouts/{rollout_id}``
and its ``/measurements`` and ``/events``, and the same under ``/api/experiments/{name}``.
The console's release pages render what these functions return."""

# No ``from __future__ import annotations``: an endpoint's key parameter is a dependency
# that differs per kind, and FastAPI reads it from the annotation object at definition.

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from modelyard.errors import error_responses
from modelyard.guard.auth import requires
from modelyard.guard.roles import Access
from modelyard.release.protocol import (
    ExperimentList,
    ExperimentOut,
    MeasurementList,
    ReleaseEventList,
    RolloutList,
    RolloutOut,
)
from modelyard.release.subjects import ReleaseSubjects
from modelyard.services import Services, services_of

READ = requires(Access.read)
Subjects = ReleaseSubjects[Any, Any, Any]


def rollout_key(rollout_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> int:
    return rollout_id


def experiment_key(name: str) -> str:
    return name


@dataclass(frozen=True)
class Kind:
    name: str  # "rollout": its template, its title; "rollouts": its URLs
    param: str  # the key's path parameter
    key: Callable[..., Any]  # the dependency that reads the key from the path and checks it
    service: Callable[[Services], Subjects]
    out: type[BaseModel]
    listing: type[BaseModel]

    @property
    def plural(self) -> str:
        return f"{self.name}s"

    def of(self, request: Request) -> Subjects:
        return self.service(services_of(request))

    async def read_list(
        self, request: Request, model: str | None = None, limit: int = 100
    ) -> BaseModel:
        found = await asyncio.to_thread(self.of(request).recent, model, limit)
        return self.listing(data=found)

    async def read_one(self, request: Request, key: Any) -> BaseModel:
        out: BaseModel = await asyncio.to_thread(self.of(request).get, key)
        return out

    async def read_measurements(self, request: Request, key: Any) -> MeasurementList:
        return MeasurementList(data=await asyncio.to_thread(self.of(request).measurements, key))

    async def read_events(self, request: Request, key: Any) -> ReleaseEventList:
        return ReleaseEventList(data=await asyncio.to_thread(self.of(request).events, key))

    def keyed(
        self, action: Callable[[Request, Any], Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        """An endpoint that runs ``action(request, key)`` with this kind's key."""

        async def endpoint(request: Request, key: Annotated[Any, Depends(self.key)]) -> Any:
            return await action(request, key)

        return endpoint

    def add_reads(self, router: APIRouter) -> None:
        """The list, one, its measurements and its events, on ``router``; named as the
        routes were when each kind spelled them out (the OpenAPI operation ids)."""

        async def listing(
            request: Request,
            model: Annotated[str | None, Query(max_length=128)] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        ) -> Any:
            return await self.read_list(request, model, limit)

        one = f"/{{{self.param}}}"
        reads: list[tuple[str, Callable[..., Awaitable[Any]], type[BaseModel], str]] = [
            ("", listing, self.listing, f"list_{self.plural}"),
            (one, self.keyed(self.read_one), self.out, f"get_{self.name}"),
            (
                f"{one}/measurements",
                self.keyed(self.read_measurements),
                MeasurementList,
                f"{self.name}_measurements",
            ),
            (
                f"{one}/events",
                self.keyed(self.read_events),
                ReleaseEventList,
                f"{self.name}_events",
            ),
        ]
        for path, endpoint, model, name in reads:
            router.add_api_route(
                path,
                endpoint,
                response_model=model,
                dependencies=[READ],
                name=name,
                responses=error_responses(404) if path else None,  # only the listing finds all
            )


ROLLOUT = Kind("rollout", "rollout_id", rollout_key, lambda s: s.rollouts, RolloutOut, RolloutList)
EXPERIMENT = Kind(
    "experiment", "name", experiment_key, lambda s: s.experiments, ExperimentOut, ExperimentList
)
KINDS = (ROLLOUT, EXPERIMENT)
