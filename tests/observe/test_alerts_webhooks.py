"""Alert webhooks against a real HTTP receiver: payloads, order, retries with backoff,
unreachable URLs, and evaluation that never waits for a delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from modelyard.observe.alerts import AlertEvaluator, AlertService, RetryPolicy, WebhookNotifier
from modelyard.store import Store
from tests.live import free_port
from tests.observe.test_alerts import T0, log_request, rule

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.05, timeout_s=2.0)
# Decides a response status from the payload and how many requests came before it.
Answer = Callable[[dict[str, Any], int], int]


class Receiver:
    """A webhook receiver on a free port, in a thread; it keeps every payload it got."""

    def __init__(self, answer: Answer) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                receiver.release.wait(10)
                status = answer(body, len(receiver.received))
                receiver.received.append(body)
                receiver.statuses.append(status)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def delivered(self) -> list[tuple[str, str]]:
        """(rule, state) of the payloads answered with success, in arrival order."""
        return [
            (body["rule"], body["state"])
            for body, status in zip(self.received, self.statuses, strict=True)
            if status < 300
        ]


@pytest.fixture
def receivers() -> Iterator[Callable[[Answer], Receiver]]:
    started: list[Receiver] = []

    def start(answer: Answer) -> Receiver:
        receiver = Receiver(answer)
        receiver.thread.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(5)


def always(status: int) -> Answer:
    return lambda _body, _seen: status


def evaluator(store: Store, retry: RetryPolicy = FAST) -> AlertEvaluator:
    return AlertEvaluator(AlertService(store), WebhookNotifier(retry))


async def test_a_receiver_gets_the_firing_then_the_resolution(
    store: Store, receivers: Callable[[Answer], Receiver]
) -> None:
    hook = receivers(always(204))
    alerts = AlertService(store)
    made = alerts.create(
        rule(
            route="bot",
            comparison=">=",
            window_s=60,
            severity="critical",
            webhooks=[hook.url],
        ),
        actor="t",
    )
    watcher = evaluator(store)
    log_request(store, T0, status=500)
    log_request(store, T0, status=200)
    await watcher.evaluate_once(T0)
    later = T0 + timedelta(minutes=2)
    log_request(store, later, status=200)
    await watcher.evaluate_once(later)
    await watcher.aclose()

    firing, resolved = hook.received
    events = {e.state: e for e in alerts.events()}
    assert firing == {
        "event_id": events["firing"].id,
        "incident_id": events["firing"].id,
        "rule": "errors",
        "state": "firing",
        "severity": "critical",
        "metric": "error_rate",
        "route": "bot",
        "comparison": ">=",
        "threshold": 0.5,
        "value": 0.5,
        "window_s": 60,
        "for_s": 0,
        "at": T0.isoformat(),
        "details": events["firing"].details,
    }
    assert (resolved["state"], resolved["value"], resolved["at"]) == (
        "resolved",
        0.0,
        later.isoformat(),
    )
    assert resolved["incident_id"] == firing["event_id"] != resolved["event_id"]
    for event in events.values():
        assert [d.model_dump() for d in event.deliveries] == [
            {"url": hook.url, "attempts": 1, "ok": True, "status": 204, "error": None}
        ]
    assert made.webhooks == [hook.url]


async def test_a_receiver_that_fails_twice_gets_a_third_attempt(
    store: Store, receivers: Callable[[Answer], Receiver]
) -> None:
    hook = receivers(lambda _body, seen: 503 if seen < 2 else 200)
    alerts = AlertService(store)
    alerts.create(rule(window_s=60, webhooks=[hook.url]), actor="t")
    watcher = evaluator(store, RetryPolicy(attempts=4, backoff_s=0.01, timeout_s=2.0))
    log_request(store, T0, status=500)
    await watcher.evaluate_once(T0)
    await watcher.drain()
    assert hook.statuses == [503, 503, 200]
    (event,) = alerts.events()
    assert [d.model_dump() for d in event.deliveries] == [
        {"url": hook.url, "attempts": 3, "ok": True, "status": 200, "error": None}
    ]
    await watcher.aclose()


async def test_a_client_error_is_not_retried(
    store: Store, receivers: Callable[[Answer], Receiver]
) -> None:
    hook = receivers(always(404))
    alerts = AlertService(store)
    alerts.create(rule(window_s=60, webhooks=[hook.url]), actor="t")
    watcher = evaluator(store)
    log_request(store, T0, status=500)
    await watcher.evaluate_once(T0)
    await watcher.aclose()
    (delivery,) = alerts.events()[0].deliveries
    assert (delivery.attempts, delivery.ok, delivery.status, delivery.error) == (
        1,
        False,
        404,
        "HTTP 404",
    )


async def test_an_unreachable_url_is_given_up_and_other_rules_still_notify(
    store: Store, receivers: Callable[[Answer], Receiver]
) -> None:
    hook = receivers(always(200))
    nowhere = f"http://127.0.0.1:{free_port()}/hook"
    alerts = AlertService(store)
    alerts.create(rule(name="a-broken", window_s=60, webhooks=[nowhere, hook.url]), actor="t")
    alerts.create(rule(name="b-fine", window_s=60, webhooks=[hook.url]), actor="t")
    watcher = evaluator(store)
    log_request(store, T0, status=500)
    events = await watcher.evaluate_once(T0)
    assert [e.rule for e in events] == ["a-broken", "b-fine"]
    await watcher.aclose()
    assert sorted(hook.delivered()) == [("a-broken", "firing"), ("b-fine", "firing")]
    broken = {d.url: d for d in alerts.events(rule="a-broken")[0].deliveries}
    assert broken[hook.url].ok and broken[hook.url].attempts == 1
    failed = broken[nowhere]
    assert (failed.attempts, failed.ok, failed.status) == (3, False, None)
    assert failed.error is not None and "ConnectError" in failed.error


async def test_evaluation_does_not_wait_for_a_slow_receiver(
    store: Store, receivers: Callable[[Answer], Receiver]
) -> None:
    hook = receivers(always(200))
    hook.release.clear()  # the receiver holds every request until released
    alerts = AlertService(store)
    alerts.create(rule(window_s=60, webhooks=[hook.url]), actor="t")
    watcher = evaluator(store)
    log_request(store, T0, status=500)
    assert len(await watcher.evaluate_once(T0)) == 1
    later = T0 + timedelta(minutes=2)
    assert [e.state for e in await watcher.evaluate_once(later)] == ["resolved"]
    assert hook.received == [] and alerts.events()[1].deliveries == []
    hook.release.set()
    await watcher.aclose()
    assert hook.delivered() == [("errors", "firing"), ("errors", "resolved")]


async def test_a_resolution_never_overtakes_its_firing(
    store: Store, receivers: Callable[[Answer], Receiver]
) -> None:
    firing_failures = iter([503, 503])

    def answer(body: dict[str, Any], _seen: int) -> int:
        return next(firing_failures, 200) if body["state"] == "firing" else 200

    hook = receivers(answer)
    alerts = AlertService(store)
    alerts.create(rule(window_s=60, webhooks=[hook.url]), actor="t")
    watcher = evaluator(store, RetryPolicy(attempts=3, backoff_s=0.05, timeout_s=2.0))
    log_request(store, T0, status=500)
    await watcher.evaluate_once(T0)
    await watcher.evaluate_once(T0 + timedelta(minutes=2))
    await watcher.aclose()
    assert hook.delivered() == [("errors", "firing"), ("errors", "resolved")]
    assert hook.statuses == [503, 503, 200, 200]


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_webhooks_are_signed_when_a_secret_is_set() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    payload = {"rule": "slow", "state": "firing", "value": 1.5}
    signed = WebhookNotifier(FAST, client=client, secret=b"s3cret")
    assert (await signed.deliver("https://hooks.example/a", payload)).ok
    unsigned = WebhookNotifier(FAST, client=client)
    assert (await unsigned.deliver("https://hooks.example/b", payload)).ok
    await client.aclose()
    first, second = seen
    assert json.loads(first.content) == payload
    timestamp = first.headers["x-modelyard-timestamp"]
    expected = hmac.new(b"s3cret", f"{timestamp}.".encode() + first.content, hashlib.sha256)
    assert first.headers["x-modelyard-signature"] == f"sha256={expected.hexdigest()}"
    assert abs(int(timestamp) - time.time()) < 60
    forged = hmac.new(b"other", f"{timestamp}.".encode() + first.content, hashlib.sha256)
    assert first.headers["x-modelyard-signature"] != f"sha256={forged.hexdigest()}"
    assert "x-modelyard-signature" not in second.headers
    assert second.headers["content-type"] == "application/json"
