"""Send chat traffic to a modelyard server, as many end users, and count what served it.

    .venv/bin/python scripts/drive_traffic.py --requests 400 --users 200 --concurrency 4

Reads the key from MODELYARD_API_KEY (or --key) and sends each request with a ``user``
drawn from ``--users`` ids, so sticky assignment keeps each user on one variant. Prints
the requests per variant, version and status (from the response headers) at the end, and
a line every ``--every`` requests. Prompts cycle through a small built-in list.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter

import httpx

PROMPTS = (
    "Name a fruit.",
    "What is the capital of France?",
    "Say hello in one word.",
    "Give me a color.",
    "What is 2 + 2?",
    "Name an animal that can fly.",
    "Write one word that rhymes with cat.",
    "What day comes after Monday?",
)


async def drive(args: argparse.Namespace) -> Counter[tuple[str, str, int]]:
    seen: Counter[tuple[str, str, int]] = Counter()
    rng = random.Random(args.seed)
    gate = asyncio.Semaphore(args.concurrency)
    headers = {"authorization": f"Bearer {args.key}"}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=args.base_url, headers=headers, timeout=120) as client:

        async def one(index: int) -> None:
            body = {
                "model": args.model,
                "messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
                "max_tokens": args.max_tokens,
                "user": f"user-{rng.randrange(args.users)}",
            }
            async with gate:
                try:
                    response = await client.post("/v1/chat/completions", json=body)
                except httpx.HTTPError as error:
                    seen[("-", "-", 0)] += 1
                    print(f"request {index}: {error!r}", file=sys.stderr)
                    return
            variant = response.headers.get("x-modelyard-variant", "-")
            version = response.headers.get("x-modelyard-version", "-")
            seen[(variant, version, response.status_code)] += 1
            done = sum(seen.values())
            if done % args.every == 0:
                rate = done / (time.monotonic() - started)
                print(f"{done} requests ({rate:.1f}/s): {dict(seen)}", flush=True)

        await asyncio.gather(*(one(i) for i in range(args.requests)))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default=os.environ.get("MODELYARD_API_KEY"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.key:
        parser.error(
            "give --key or set MODELYARD_API_KEY (the admin key is in MODELYARD_HOME/admin.key)"
        )
    seen = asyncio.run(drive(args))
    print("variant  version  status  requests")
    for (variant, version, status), count in sorted(seen.items()):
        print(f"{variant:8} {version:8} {status:6}  {count}")


if __name__ == "__main__":
    main()
