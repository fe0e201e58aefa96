"""Modules imported on first use. The server imports every package, but scipy,
scikit-learn and the text metrics serve analyses and evaluations, not requests: imported
eagerly they made a serving worker take 290 MiB instead of about 110 (issue 8)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for module ``name``; the first attribute read imports it (Python caches the
    module in ``sys.modules``, so later reads cost a dictionary lookup)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._target = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._target), attribute)


def lazy_module(name: str) -> Any:
    return LazyModule(name)
