"""Webhook delivery: a JSON POST per URL, retried with capped exponential backoff.

With a secret, each POST is signed like Stripe's webhooks: ``x-modelyard-timestamp`` (Unix
seconds) and ``x-modelyard-signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"``. A receiver recomputes it over the raw body and refuses old
timestamps, so a captured call cannot be replayed or altered.

httpx is imported on the first delivery: a server whose alerts never fire does not load it
(issue 8)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.observe.alerts.protocol import Delivery

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
# Worth another try: the receiver may be restarting, overloaded or rate limiting.
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    timeout_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookNotifier:
    def __init__(
        self,
        retry: RetryPolicy | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._client = client
        self._owns_client = client is None
        self._secret = secret

    async def deliver_all(self, urls: list[str], payload: Mapping[str, Any]) -> list[Delivery]:
        """POST ``payload`` to every URL at once; one result per URL, never an exception."""
        return list(await asyncio.gather(*(self.deliver(url, payload) for url in urls)))

    async def deliver(self, url: str, payload: Mapping[str, Any]) -> Delivery:
        import httpx

        client = self._http()
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        status: int | None = None
        error: str | None = None
        attempt = 0
        while attempt < self.retry.attempts:
            attempt += 1
            try:
                response = await client.post(url, content=body, headers=self._headers(body))
            except httpx.HTTPError as failure:
                status, error = None, f"{type(failure).__name__}: {failure}".rstrip(": ")
            else:
                status, error = response.status_code, None
                if response.is_success:
                    return Delivery(url=url, attempts=attempt, ok=True, status=status)
                error = f"HTTP {status}"
                if status not in RETRYABLE:
                    break
            if attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.delay(attempt))
        log.warning("alert webhook %s failed after %d attempt(s): %s", url, attempt, error)
        return Delivery(url=url, attempts=attempt, ok=False, status=status, error=error)

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._secret is not None:
            timestamp = int(time.time())
            headers["x-modelyard-timestamp"] = str(timestamp)
            headers["x-modelyard-signature"] = signature(self._secret, timestamp, body)
        return headers

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=self.retry.timeout_s,
                follow_redirects=False,
                headers={"user-agent": "modelyard-alerts"},
            )
        return self._client
