"""Work an app runs in the background on request (labelling, distillation, eval runs): the
jobs, kept on ``app.state`` (never a module global) and cancelled when the app stops, the
client through which a job talks to the app itself as the caller who started it, and one
chat completion asked through it (an eval item, a teacher's label).

httpx is imported where a client is made: a server that never starts a job does not load
it (issue 8)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from starlette.types import ASGIApp

log = logging.getLogger(__name__)
# Headers that carry a caller's credentials, forwarded to a job's requests.
CREDENTIALS = ("authorization", "api-key", "cookie")


class BackgroundJobs:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    def start(self, name: str, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` as the job ``name`` (``label:3``, ``distil:7``, ``eval:12``)."""
        task = asyncio.create_task(work, name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda done: self._ended(name, done))

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def _ended(self, name: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]
        if not task.cancelled() and task.exception() is not None:
            log.error("job %s failed", name, exc_info=task.exception())

    async def wait(self, name: str) -> None:
        """Until the job ``name`` ends (tests and the CLI's peers wait on it)."""
        task = self._tasks.get(name)
        if task is not None:
            await asyncio.wait([task])

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def gateway_client(app: ASGIApp, headers: Mapping[str, str], timeout_s: float) -> httpx.AsyncClient:
    """A client of ``app`` itself, with the credentials found in ``headers`` (a caller's
    request): a background job's requests are the caller's, through the whole path."""
    import httpx

    forwarded = {name: value for name in CREDENTIALS if (value := headers.get(name))}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://modelyard",
        headers=forwarded,
        timeout=httpx.Timeout(timeout_s, connect=10),
    )


@dataclass(frozen=True)
class ChatReply:
    """What one ``/v1/chat/completions`` request gave: the reply's text, or why it failed."""

    text: str
    error: str | None
    request_id: str | None
    version: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int


async def ask_chat(client: httpx.AsyncClient, body: Mapping[str, Any]) -> ChatReply:
    """One non-streamed chat completion through ``client``, as any client sends it; a
    failure (an error status, a broken connection, an answer that is not a completion) is
    recorded in ``error``, never raised."""
    import httpx

    started = time.perf_counter()
    text, error, request_id, version = "", None, None, None
    usage: dict[str, Any] = {}
    try:
        response = await client.post("/v1/chat/completions", json=dict(body))
        request_id = response.headers.get("x-modelyard-request-id")
        version = response.headers.get("x-modelyard-version")
        data = response.json()
        if response.status_code == 200:
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
        else:
            error = f"{response.status_code}: {error_message(data)}"
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as failure:
        error = f"{type(failure).__name__}: {failure}"
    return ChatReply(
        text=text,
        error=error,
        request_id=request_id,
        version=version,
        latency_ms=(time.perf_counter() - started) * 1000,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
    )


def error_message(data: Any) -> str:
    """The message of an OpenAI-shaped error answer (the whole answer if it is not one)."""
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message", data))
    return str(data)
