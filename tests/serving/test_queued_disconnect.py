"""A client that leaves while its request still waits for the engine's first token frees
the engine at once: its generation is closed, not left running until a token comes."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import select
from starlette.types import Message

from modelyard.registry import Registry
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
FIRST_TOKEN_MS = 20_000


class LeavingClient:
    """Sends its body, then waits and disconnects after ``leave_after_s``."""

    def __init__(self, body: bytes, leave_after_s: float) -> None:
        self._body: bytes | None = body
        self._leave_after_s = leave_after_s
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(self._leave_after_s)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def leave_while_queued(api: AppClient, stream: bool) -> float:
    body = json.dumps(
        {"model": "slow", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    ).encode()
    auth = api.headers["authorization"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"authorization", auth)],
        "client": ("127.0.0.1", 5000),
        "server": ("modelyard", 80),
        "app": api.app,
    }
    client = LeavingClient(body, leave_after_s=0.2)
    started = time.perf_counter()
    async with asyncio.timeout(10):
        await api.app(scope, client.receive, client.send)
    return time.perf_counter() - started


@pytest.mark.parametrize("stream", [False, True])
async def test_leaving_before_the_first_token_frees_the_engine(
    api: AppClient, home_registry: Registry, stream: bool
) -> None:
    register_scripted(home_registry, "slow", first_token_delay_ms=FIRST_TOKEN_MS)
    await api.reload_routes()
    took = await leave_while_queued(api, stream)
    assert took < FIRST_TOKEN_MS / 1000 / 4  # not held until the first token
    await api.logged()
    with api.services.store.session() as session:
        row = session.scalars(select(RequestLogRow).where(RequestLogRow.route == "slow")).one()
        assert (row.status, row.error_code) == (499, "client_disconnected")
