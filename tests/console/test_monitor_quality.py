"""The Monitor page's Online quality section renders what ``/api/quality`` returns; the
Routes page shows a route's live judge."""

from __future__ import annotations

import asyncio
import html
import json
import re

import pytest

from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "hi"}]


async def test_the_monitor_shows_each_versions_online_quality(
    api: AppClient, home_registry: Registry
) -> None:
    empty = (await api.get("/ui/monitor?hours=1")).text
    assert 'id="quality-empty"' in empty and "modelyard route judge" in empty
    register_scripted(home_registry, "chat", replies=["hello"])
    register_scripted(home_registry, "judge", replies=["3"])
    await api.reload_routes()
    live = {"judge": "judge", "share": 1.0}
    assert (await api.put("/api/routes/chat", json={"policy": {"live_judge": live}})).is_success
    routes = (await api.get("/ui/routes")).text
    assert re.search(
        r'100 % of answers scored by <span class="mono">judge</span> from 1 to 5', routes
    )
    assert 'href="/ui/monitor?route=chat#quality"' in routes
    for _ in range(3):
        await api.post("/v1/chat/completions", json={"model": "chat", "messages": USER})
    for _ in range(500):
        if api.services.live_judge.pending == 0:
            break
        await asyncio.sleep(0.01)
    page = (await api.get("/ui/monitor?hours=1&route=chat")).text
    table = page[page.index('id="quality-table"') :]
    assert re.search(r"<td>chat</td><td>chat@1</td><td>3</td><td>0</td>\s*<td>0.500</td>", table)
    assert 'id="chart-quality"' in page
    twin = html.unescape(re.search(r'<a href="(/api/quality[^"]*)">JSON</a>', page).group(1))
    data = json.loads(
        html.unescape(re.search(r'id="quality-data"[^>]*>(.*?)</script>', page).group(1))
    )
    expected = (await api.get(twin)).json()
    assert data["series"] == expected["series"] and data["replica"]["judged"] == 3
