"""Engine kinds come from the ``modelyard.engines`` entry-point group, built-ins included."""

from __future__ import annotations

from importlib.metadata import entry_points

from modelyard.engines.base import Engine, EngineError

GROUP = "modelyard.engines"


def available_kinds() -> list[str]:
    return sorted(point.name for point in entry_points(group=GROUP))


def engine_class(kind: str) -> type[Engine]:
    for point in entry_points(group=GROUP, name=kind):
        loaded = point.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Engine)):
            raise EngineError(f"entry point '{kind}' of {GROUP} is not an Engine subclass")
        return loaded
    raise EngineError(
        f"unknown engine kind '{kind}'; installed kinds: {', '.join(available_kinds())}",
        status=503,
        code="engine_not_ready",
    )
