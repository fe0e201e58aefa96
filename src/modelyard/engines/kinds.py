"""Engine kinds come from the ``modelyard.engines`` entry-point group, built-ins included."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from modelyard.engines.base import Engine, EngineError

GROUP = "modelyard.engines"


def available_kinds() -> list[str]:
    return sorted(point.name for point in entry_points(group=GROUP))


def builtin_kinds() -> list[str]:
    """The kinds modelyard itself installs (the reference docs list these)."""
    points = entry_points(group=GROUP)
    return sorted(point.name for point in points if point.value.startswith("modelyard."))


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


def check_parameters(kind: str, parameters: Mapping[str, Any]) -> None:
    """Refuse a version's parameters that ``kind`` does not accept, or a kind not installed
    (both raise ``EngineError`` with a message that says what is accepted)."""
    engine_class(kind).check_parameters(parameters)
