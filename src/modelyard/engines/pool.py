"""Loaded engines, one per version, started once and shared by all requests."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from modelyard.config import Settings
from modelyard.engines.base import Engine, EngineError, EngineInfo, EngineNotReady, EngineSpec
from modelyard.engines.capabilities import Capabilities
from modelyard.engines.kinds import engine_class

log = logging.getLogger(__name__)

VersionKey = tuple[str, int]


@dataclass(frozen=True)
class EngineState:
    model: str
    version: int
    kind: str
    state: str  # loading | ready | failed
    error: str | None = None
    info: EngineInfo | None = None
    capabilities: Capabilities | None = None  # of a ready engine's kind

    def as_json(self) -> dict[str, Any]:
        """As ``GET /api/engines`` shows it."""
        return {
            "model": self.model,
            "version": self.version,
            "kind": self.kind,
            "state": self.state,
            "error": self.error,
            "info": self.info.as_json() if self.info is not None else None,
            "capabilities": self.capabilities.names() if self.capabilities else None,
        }


class EnginePool:
    """Starts engines on first use (or ahead, with ``preload``) and hands out ready ones."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loads: dict[VersionKey, asyncio.Task[Engine]] = {}
        self._specs: dict[VersionKey, EngineSpec] = {}
        self._ready: dict[VersionKey, Engine] = {}  # started engines, by version
        self._kinds: dict[str, type[Engine]] = {}

    def kind_of(self, kind: str) -> type[Engine]:
        """The class of an engine kind (what it can do), without starting an engine."""
        found = self._kinds.get(kind)
        if found is None:
            found = self._kinds[kind] = engine_class(kind)
        return found

    def preload(self, spec: EngineSpec) -> None:
        self._load(spec)

    async def get(self, spec: EngineSpec) -> Engine:
        ready = self._ready.get((spec.model, spec.version))
        if ready is not None:  # the hot path: no task, no timer
            return ready
        task = self._load(spec)
        try:
            return await asyncio.wait_for(
                asyncio.shield(task), timeout=self._settings.engine_load_timeout_s
            )
        except TimeoutError:
            raise EngineNotReady(
                f"model '{spec.model}' version {spec.version} is still loading; retry shortly"
            ) from None

    def states(self) -> list[EngineState]:
        out = []
        for key, task in self._loads.items():
            spec = self._specs[key]
            if not task.done():
                state, error = "loading", None
            elif task.cancelled():
                state, error = "failed", "cancelled"
            elif (exc := task.exception()) is not None:
                state, error = "failed", str(exc)
            else:
                engine = task.result()
                out.append(
                    EngineState(
                        spec.model,
                        spec.version,
                        spec.kind,
                        "ready",
                        info=engine.info(),
                        capabilities=engine.capabilities,
                    )
                )
                continue
            out.append(EngineState(spec.model, spec.version, spec.kind, state, error))
        return out

    async def aclose(self) -> None:
        for task in self._loads.values():
            if not task.done():
                task.cancel()
        for task in self._loads.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                await task.result().aclose()
        self._loads.clear()
        self._ready.clear()

    def _load(self, spec: EngineSpec) -> asyncio.Task[Engine]:
        key = (spec.model, spec.version)
        task = self._loads.get(key)
        if task is None or (task.done() and not task.cancelled() and task.exception()):
            if task is not None:
                log.info("retrying the load of %s version %s", spec.model, spec.version)
            task = asyncio.create_task(self._start(spec), name=f"load {key}")
            self._loads[key] = task
            self._specs[key] = spec
        return task

    async def _start(self, spec: EngineSpec) -> Engine:
        try:
            engine = engine_class(spec.kind)(spec, self._settings)
            await engine.start()
        except EngineError as error:
            log.error("engine %s v%s failed to start: %s", spec.model, spec.version, error)
            raise EngineNotReady(
                f"model '{spec.model}' version {spec.version} failed to start: {error}"
            ) from error
        except (OSError, ValueError, RuntimeError) as error:
            log.error("engine %s v%s failed to start: %s", spec.model, spec.version, error)
            raise EngineNotReady(
                f"model '{spec.model}' version {spec.version} failed to start: {error}"
            ) from error
        log.info("engine %s v%s (%s) ready", spec.model, spec.version, spec.kind)
        self._ready[(spec.model, spec.version)] = engine
        return engine
