"""The load generator: its own process, closed loop. N concurrent connections each send
their next request as soon as the last one ended (or at their slot of a fixed rate, with
``--rate``), for ``--warmup`` + ``--duration`` seconds; streamed answers are read to the
end. Every request is written to ``--out`` as ``[start_s, end_s, status, error, seq]``
(times from the start of the step; ``error`` is null for a good answer; ``seq`` makes the
request's ``user`` field, ``<user-prefix>-<seq>``, unique).

    python -m bench.overhead_parts.loadgen --url http://127.0.0.1:P/v1/chat/completions \\
        --key K --model bench --concurrency 10 --warmup 2 --duration 8 [--stream] --out f.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

# The prompt carries an e-mail address, so a gateway that redacts PII has work to do.
SYSTEM = "You are a helpful assistant. Answer in one short sentence."
QUESTION = "Please draft a reply to jane.doe@example.com about invoice 4411, due on Friday."
EXPECTED = b"benchmark"  # a piece of the fake upstream's answer
MAX_TOKENS = 32


# ``--tools``: what an agent framework sends besides (tools, a tool choice, fields beyond
# the ones modelyard models), to measure what passing them through costs.
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_invoice",
            "description": "Look an invoice up by its number.",
            "parameters": {
                "type": "object",
                "properties": {"number": {"type": "integer"}, "currency": {"enum": ["EUR", "USD"]}},
                "required": ["number"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "send_mail",
            "description": "Send an e-mail.",
            "parameters": {
                "type": "object",
                "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
                "required": ["to", "body"],
            },
        },
    },
]
TOOL_FIELDS: dict[str, Any] = {
    "tools": TOOLS,
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "top_k": 20,
    "chat_template_kwargs": {"enable_thinking": False},
}


# ``padded``: a plain request as large as a ``tools`` one, its system message lengthened
# with neutral prose: the control that tells per-byte costs (receiving, parsing, scanning,
# forwarding a larger body) from the handling of tools themselves.
FILLER = (
    " Keep the tone friendly and the facts straight; mention the amount only when asked,"
    " and never promise a date the customer did not give."
)
BODY_KINDS = ("plain", "tools", "padded")


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _body(model: str, stream: bool, user: str, system: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
        "user": user,
    }


def request_body(model: str, *, stream: bool, user: str, kind: str = "plain") -> bytes:
    """A chat request of one of ``BODY_KINDS``; ``padded`` has exactly the byte size of
    ``tools`` for the same model, mode and user."""
    if kind not in BODY_KINDS:
        raise ValueError(f"unknown body kind {kind!r}; one of {', '.join(BODY_KINDS)}")
    body = _body(model, stream, user, SYSTEM)
    if kind == "tools":
        body.update(TOOL_FIELDS)
    elif kind == "padded":
        missing = len(_encode({**body, **TOOL_FIELDS})) - len(_encode(body))
        filler = (FILLER * (missing // len(FILLER) + 1))[:missing]
        body = _body(model, stream, user, SYSTEM + filler)
    return _encode(body)


def check_answer(data: bytes, *, stream: bool) -> str | None:
    """None for a complete, good answer, else what was wrong with it."""
    if stream:
        if b'"error"' in data:
            return "stream_error_event"
        if not data.rstrip().endswith(b"[DONE]"):
            return "truncated_stream"
    elif b'"choices"' not in data:
        return "bad_body"
    if EXPECTED not in data:
        return "unexpected_content"
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    headers = {"authorization": f"Bearer {args.key}", "content-type": "application/json"}
    records: list[list[Any]] = []
    counters = {"seq": 0, "slot": 0, "in_flight": 0}

    async def send(session: aiohttp.ClientSession) -> None:
        seq = counters["seq"]
        counters["seq"] += 1
        body = request_body(
            args.model, stream=args.stream, user=f"{args.user_prefix}-{seq}", kind=args.body
        )
        counters["in_flight"] += 1
        start = time.perf_counter()
        status, error = 0, None
        try:
            async with session.post(args.url, data=body, headers=headers) as response:
                status = response.status
                if args.stream:
                    buffer = bytearray()
                    async for piece in response.content.iter_any():
                        buffer += piece
                    data = bytes(buffer)
                else:
                    data = await response.read()
            error = f"http_{status}" if status != 200 else check_answer(data, stream=args.stream)
        except TimeoutError:
            error = "timeout"
        except aiohttp.ClientError as failure:
            error = type(failure).__name__
        end = time.perf_counter()
        counters["in_flight"] -= 1
        records.append([round(start - began, 6), round(end - began, 6), status, error, seq])

    async def connection(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < stop_at:
            if args.rate:
                slot = began + counters["slot"] / args.rate
                counters["slot"] += 1
                wait = slot - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                if time.perf_counter() >= stop_at:
                    return
            await send(session)

    print("go", flush=True)  # the parent times its CPU samples from this line
    began = time.perf_counter()
    stop_at = began + args.warmup + args.duration
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(connection(session)) for _ in range(args.concurrency)]
        grace = max(0.0, stop_at - time.perf_counter()) + args.grace
        _, pending = await asyncio.wait(tasks, timeout=grace)
        unfinished = counters["in_flight"]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "url": args.url,
        "concurrency": args.concurrency,
        "stream": args.stream,
        "rate": args.rate,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "started_at": time.time() - (time.perf_counter() - began),
        "sent": counters["seq"],
        "unfinished": unfinished,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "requests": records,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="closed-loop HTTP load generator")
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--model", default="bench")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument(
        "--body",
        choices=BODY_KINDS,
        default="plain",
        help="tools: tools and extra fields too; padded: plain, as large as tools",
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s in all (0: closed loop)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--grace", type=float, default=5.0, help="wait for requests in flight")
    parser.add_argument("--user-prefix", default="lg")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(run(args))
    args.out.write_text(json.dumps(result, separators=(",", ":")))
    print(f"{len(result['requests'])} requests, {result['unfinished']} unfinished", file=sys.stderr)


if __name__ == "__main__":
    main()
