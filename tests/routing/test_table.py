from __future__ import annotations

import asyncio

import pytest

from modelyard.registry import Registry
from modelyard.routing import ModelNotRoutable, RoutingTable
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.refresh import RoutingRefresher
from modelyard.store import Store
from tests.conftest import register_scripted


def table_of(registry: Registry) -> RoutingTable:
    table = RoutingTable()
    table.replace(registry.routing_state())
    return table


def test_public_names_resolve_to_aliases_and_pinned_versions(registry: Registry) -> None:
    register_scripted(registry, "alpha")
    register_scripted(registry, "alpha", alias="staging")
    table = table_of(registry)
    assert table.resolve("alpha").version.number == 1
    assert table.resolve("alpha:staging").version.number == 2
    assert table.resolve("alpha@2").version.number == 2
    assert table.resolve("alpha@1").alias is None
    assert [t.public_name for t in table.public_models()] == ["alpha"]
    assert {(s.model, s.version) for s in table.aliased_specs()} == {("alpha", 1), ("alpha", 2)}


@pytest.mark.parametrize("name", ["ghost", "alpha:canary", "alpha@9", "alpha@x", ""])
def test_unknown_names_do_not_resolve(registry: Registry, name: str) -> None:
    register_scripted(registry, "alpha")
    with pytest.raises(ModelNotRoutable):
        table_of(registry).resolve(name)


@pytest.mark.anyio
async def test_the_watcher_picks_up_changes_from_another_process(
    store: Store, registry: Registry
) -> None:
    register_scripted(registry, "alpha")
    table = RoutingTable()
    seen: list[int] = []
    refresher = RoutingRefresher(
        table,
        registry,
        TrafficPolicies(store, registry),
        on_change=lambda t: seen.append(t.resolve("alpha").version.number),
    )
    await refresher.refresh_now()
    watcher = asyncio.create_task(refresher.watch(0.05))
    try:
        register_scripted(registry, "alpha")  # what `modelyard alias set` does elsewhere
        for _ in range(100):
            if table.resolve("alpha").version.number == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        watcher.cancel()
    assert table.resolve("alpha").version.number == 2
    assert seen == [1, 2]
