"""Mixed traffic for the cluster test: a few client threads sending chat completions through
HAProxy, streamed and not, with several keys, each request with a `user` of its own; every
attempt recorded with what came back (or how it failed)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from deploy.cluster import REPLICA_HEADER

REQUEST_ID = "x-modelyard-request-id"  # set by a replica, never by HAProxy


@dataclass
class Attempt:
    """One request as its client saw it."""

    number: int
    key: str  # the key's name
    stream: bool
    user: str
    started: float  # monotonic
    ended: float = 0.0
    status: int | None = None
    request_id: str | None = None
    replica: str | None = None  # HAProxy's name of the replica that answered
    version: str | None = None
    variant: str | None = None
    error: str | None = None  # how it failed; None when a replica answered it whole
    detail: str = ""  # the transport error's message, when there was one

    @property
    def answered(self) -> bool:
        """A replica's whole answer reached the client (any status: 200, 429, ...)."""
        return self.error is None and self.request_id is not None


class Traffic:
    """``clients`` threads, each sending requests back to back until ``stop``; request n
    uses key ``n mod keys`` and is streamed every other round of the keys."""

    def __init__(self, url: str, keys: dict[str, str], model: str, clients: int) -> None:
        self._url = url
        self._keys = keys
        self._names = sorted(keys)
        self._model = model
        self._clients = clients
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.attempts: list[Attempt] = []

    def start(self) -> None:
        for index in range(self._clients):
            thread = threading.Thread(target=self._client, name=f"client{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> list[Attempt]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.done()

    def done(self) -> list[Attempt]:
        """The attempts that have ended so far."""
        with self._lock:
            return [a for a in self.attempts if a.ended]

    def _client(self) -> None:
        with httpx.Client(base_url=self._url, timeout=httpx.Timeout(15.0)) as client:
            while not self._stop.is_set():
                with self._lock:
                    number = next(self._numbers)
                key = self._names[number % len(self._names)]
                attempt = Attempt(
                    number=number,
                    key=key,
                    stream=(number // len(self._names)) % 2 == 1,
                    user=f"cluster-user-{number}",
                    started=time.monotonic(),
                )
                with self._lock:
                    self.attempts.append(attempt)
                self._send(client, attempt)
                attempt.ended = time.monotonic()

    def _send(self, client: httpx.Client, attempt: Attempt) -> None:
        body: dict[str, object] = {
            "model": self._model,
            "messages": [{"role": "user", "content": "hello"}],
            "user": attempt.user,
            "stream": attempt.stream,
        }
        headers = {"authorization": f"Bearer {self._keys[attempt.key]}"}
        try:
            with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
                attempt.status = r.status_code
                attempt.request_id = r.headers.get(REQUEST_ID)
                attempt.replica = r.headers.get(REPLICA_HEADER)
                attempt.version = r.headers.get("x-modelyard-version")
                attempt.variant = r.headers.get("x-modelyard-variant")
                text = r.read().decode()
        except httpx.TimeoutException as error:
            attempt.error, attempt.detail = "timed out", str(error)
            return
        except httpx.TransportError as error:  # the connection ended before the answer did
            attempt.error = _cut(attempt, error)
            attempt.detail = str(error)
            return
        attempt.error = _failure(attempt, text)


def _cut(attempt: Attempt, error: httpx.TransportError) -> str:
    """How a connection that ended early failed, as the client saw it."""
    if attempt.status is not None:
        return "stream cut"  # the answer had begun: headers and maybe some chunks
    if isinstance(error, httpx.RemoteProtocolError):
        return "closed without an answer"
    if isinstance(error, httpx.ConnectError):
        return "could not connect"
    return f"connection failed ({type(error).__name__})"


def _failure(attempt: Attempt, text: str) -> str | None:
    """Why a response that arrived whole is a failure, or None."""
    if attempt.request_id is None:  # HAProxy answered itself: no replica could
        return f"{attempt.status} from HAProxy"
    if attempt.status is not None and attempt.status >= 500:
        return f"{attempt.status} from a replica"
    if attempt.stream and attempt.status == 200 and "data: [DONE]" not in text:
        return "stream without [DONE]"
    return None


def errors_by_kind(attempts: Sequence[Attempt]) -> dict[str, int]:
    return dict(Counter(a.error for a in attempts if a.error is not None))
