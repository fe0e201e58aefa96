"""A fake OpenAI-compatible server that answers as vLLM does: tool-call deltas, reasoning
content, logprobs, ``n`` choices, ``finish_reason: tool_calls``, usage with cached-token
details; the events serialised as vLLM serialises them (unset fields left out)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "Qwen/Qwen3-0.6B"
CREATED = 1764720000
ARGUMENTS = ['{"city": ', '"Paris"', "}"]
USAGE = {
    "prompt_tokens": 31,
    "total_tokens": 52,
    "completion_tokens": 21,
    "prompt_tokens_details": {"cached_tokens": 16},
}


def _logprobs(token: str) -> dict[str, Any]:
    entry = {"token": token, "logprob": -0.25, "bytes": list(token.encode())}
    return {"content": [{**entry, "top_logprobs": [entry]}]}


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed chat completion: choice 0 calls a tool, the others answer in words."""
    choices = [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": "The user wants the weather.",
                "content": None,
                "tool_calls": [
                    {
                        "id": "chatcmpl-tool-7f",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "".join(ARGUMENTS)},
                    }
                ],
            },
            "logprobs": _logprobs("<tool_call>") if body.get("logprobs") else None,
            "finish_reason": "tool_calls",
            "stop_reason": None,
        }
    ]
    for index in range(1, int(body.get("n") or 1)):
        choices.append(
            {
                "index": index,
                "message": {"role": "assistant", "content": "Sunny.", "tool_calls": []},
                "logprobs": _logprobs("Sunny") if body.get("logprobs") else None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        )
    return {
        "id": "chatcmpl-0f3a",
        "object": "chat.completion",
        "created": CREATED,
        "model": body["model"],
        "choices": choices,
        "usage": USAGE,
        "prompt_logprobs": None,
    }


def _choice_deltas(index: int, logprobs: bool) -> Iterator[dict[str, Any]]:
    """One choice's deltas, as vLLM streams them (each in its own event)."""
    yield {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
           "finish_reason": None}  # fmt: skip
    if index == 0:
        for word in ("The user", " wants the weather."):
            yield {"index": 0, "delta": {"reasoning_content": word}}
        yield {
            "index": 0,
            "delta": {
                "tool_calls": [
                    {
                        "id": "chatcmpl-tool-7f",
                        "type": "function",
                        "index": 0,
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
        }
        for piece in ARGUMENTS:
            yield {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
            }
        yield {"index": 0, "delta": {}, "finish_reason": "tool_calls", "stop_reason": None}
        return
    yield {
        "index": index,
        "delta": {"content": "Sunny."},
        "logprobs": _logprobs("Sunny") if logprobs else None,
    }
    yield {"index": index, "delta": {}, "finish_reason": "stop", "stop_reason": None}


def events(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A streamed chat completion's events, the choices' deltas interleaved."""
    streams = [_choice_deltas(i, bool(body.get("logprobs"))) for i in range(body.get("n") or 1)]
    out = []
    while streams:
        for stream in list(streams):
            choice = next(stream, None)
            if choice is None:
                streams.remove(stream)
                continue
            out.append(
                {
                    "id": "chatcmpl-0f3a",
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": body["model"],
                    "choices": [choice],
                }
            )
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append(
            {
                "id": "chatcmpl-0f3a",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": body["model"],
                "choices": [],
                "usage": USAGE,
            }
        )
    return out


SAY = "say: "  # a last user message ``say: <text>`` is answered with <text>, in words


def _said(body: dict[str, Any]) -> str | None:
    """What the last message asks the fake to answer, if it starts with ``say: ``."""
    last = (body.get("messages") or [{}])[-1].get("content")
    if isinstance(last, str) and last.startswith(SAY):
        return last.removeprefix(SAY)
    return None


def said_answer(body: dict[str, Any], text: str) -> dict[str, Any]:
    """A non-streamed chat completion answering ``text``."""
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-5a1d",
        "object": "chat.completion",
        "created": CREATED,
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": USAGE,
    }


def said_events(body: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """A streamed chat completion answering ``text`` in two pieces, with usage."""
    half = len(text) // 2
    choices = [
        {"index": 0, "delta": {"role": "assistant", "content": text[:half]}},
        {"index": 0, "delta": {"content": text[half:]}},
        {"index": 0, "delta": {}, "finish_reason": "stop"},
    ]
    head = {"id": "chatcmpl-5a1d", "object": "chat.completion.chunk", "created": CREATED}
    out = [{**head, "model": body["model"], "choices": [choice]} for choice in choices]
    return [*out, {**head, "model": body["model"], "choices": [], "usage": USAGE}]


class FakeVLLM(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]  # every request body, in order

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.received.append(body)
        said = _said(body)
        if "please fail" in json.dumps(body.get("messages")):
            self._send(500, "application/json", b'{"error": {"message": "boom"}}')
        elif said is not None:
            answered = said_events(body, said) if body.get("stream") else said_answer(body, said)
            self._send_json(bool(body.get("stream")), answered)
        elif body.get("stream"):
            lines = [f"data: {json.dumps(event)}\n\n" for event in events(body)]
            self._send(200, "text/event-stream", "".join([*lines, "data: [DONE]\n\n"]).encode())
        else:
            self._send(200, "application/json", json.dumps(answer(body)).encode())

    def _send_json(self, stream: bool, answered: Any) -> None:
        if not stream:
            self._send(200, "application/json", json.dumps(answered).encode())
            return
        lines = [f"data: {json.dumps(event)}\n\n" for event in answered]
        self._send(200, "text/event-stream", "".join([*lines, "data: [DONE]\n\n"]).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextmanager
def fake_vllm() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The fake's base URL (ending in ``/v1``) and the bodies it receives."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (FakeVLLM,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
