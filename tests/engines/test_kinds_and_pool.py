from __future__ import annotations

import pytest

from modelyard.config import Settings
from modelyard.engines import EngineError, EngineNotReady, EngineSpec
from modelyard.engines.kinds import available_kinds, engine_class
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.pool import EnginePool
from modelyard.engines.scripted import ScriptedEngine
from modelyard.engines.upstream import UpstreamEngine


def test_built_in_kinds_load_through_entry_points() -> None:
    assert {"llamacpp", "scripted", "upstream"} <= set(available_kinds())
    assert engine_class("llamacpp") is LlamaCppEngine
    assert engine_class("scripted") is ScriptedEngine
    assert engine_class("upstream") is UpstreamEngine


def test_an_unknown_kind_names_the_installed_ones() -> None:
    with pytest.raises(EngineError, match=r"unknown engine kind 'tpu'.*scripted"):
        engine_class("tpu")


@pytest.mark.anyio
async def test_pool_starts_once_and_reports_failures_as_not_ready() -> None:
    pool = EnginePool(Settings())
    good = EngineSpec("m", 1, "scripted", "scripted:", {})
    bad = EngineSpec("m", 2, "scripted", "scripted:", {"start_fails": True})
    assert await pool.get(good) is await pool.get(good)
    with pytest.raises(EngineNotReady, match="failed to start"):
        await pool.get(bad)
    with pytest.raises(EngineNotReady):
        await pool.get(EngineSpec("m", 3, "llamacpp", "/nowhere.gguf", {}))
    states = {(s.version, s.state) for s in pool.states()}
    assert states == {(1, "ready"), (2, "failed"), (3, "failed")}
    await pool.aclose()
