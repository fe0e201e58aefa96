"""Alert rules: validation, the audited service, each metric over the request log, and the
evaluator's state machine (pending → firing → resolved) across restarts."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from modelyard.guard.audit import audit_events
from modelyard.observe.alerts import (
    AlertEvaluator,
    AlertRule,
    AlertRuleExists,
    AlertRuleNotFound,
    AlertService,
)
from modelyard.observe.alerts.protocol import METRICS
from modelyard.store import Store
from modelyard.store.tables import AlertEventRow, DriftReportRow, FeedbackRow, RequestLogRow

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
_ids = itertools.count()


def rule(**fields: Any) -> AlertRule:
    body: dict[str, Any] = {"name": "errors", "metric": "error_rate", "threshold": 0.5}
    body.update(fields)
    return AlertRule.model_validate(body)


def log_request(store: Store, at: datetime, **fields: Any) -> str:
    """Insert one request-log row (defaults: a 200 on route ``bot``); returns its id."""
    row: dict[str, Any] = {
        "id": f"req-{next(_ids)}",
        "at": at,
        "day": at.date().isoformat(),
        "key_id": "k",
        "endpoint": "chat.completions",
        "route": "bot",
        "version": "bot@1",
        "status": 200,
        "error_code": None,
        "latency_ms": 100.0,
    }
    row.update(fields)
    with store.session() as session:
        session.add(RequestLogRow(**row))
    return str(row["id"])


def log_requests(store: Store, at: datetime, count: int, **fields: Any) -> None:
    for _ in range(count):
        log_request(store, at, **fields)


def stored_events(store: Store) -> list[tuple[str, float | None]]:
    with store.session() as session:
        rows = session.scalars(select(AlertEventRow).order_by(AlertEventRow.id))
        return [(row.state, row.value) for row in rows]


# -- validation ----------------------------------------------------------------------------


def test_a_minimal_rule_takes_the_defaults() -> None:
    made = rule()
    assert (made.comparison, made.window_s, made.for_s, made.severity) == (">", 300, 0, "warning")
    assert (made.route, made.webhooks, made.min_requests, made.enabled) == (None, [], 1, True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "a/b"}, "not a rule name"),
        ({"name": ""}, "at least 1 character"),
        ({"metric": "p99_latency_ms"}, "'p95_latency_ms'"),
        ({"comparison": "=="}, "'>='"),
        ({"threshold": -1}, "0 or more"),
        ({"threshold": float("nan")}, "finite"),
        ({"metric": "error_rate", "threshold": 5}, "write 0.05 for 5%"),
        ({"metric": "drift", "threshold": 1.5}, "share between 0 and 1"),
        ({"window_s": 0}, "greater than or equal to 1"),
        ({"window_s": 31 * 86400}, "less than or equal to"),
        ({"for_s": -5}, "greater than or equal to 0"),
        ({"severity": "page"}, "'critical'"),
        ({"webhooks": ["ftp://example.com/x"]}, "http(s) URL"),
        ({"webhooks": ["http://"]}, "URL"),
        ({"webhooks": [f"http://h/{i}" for i in range(11)]}, "at most 10"),
        ({"min_requests": -1}, "greater than or equal to 0"),
        ({"route": "  "}, "leave it out"),
        ({"thresold": 1}, "Extra inputs"),
    ],
)
def test_invalid_rules_say_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rule(**fields)


def test_rates_accept_shares_and_counts_accept_any_size() -> None:
    assert rule(metric="client_error_rate", threshold=1).threshold == 1
    assert rule(metric="tokens", threshold=5_000_000).threshold == 5_000_000
    webhooks = ["http://a.example/hook", "http://a.example/hook", "https://b.example/x"]
    assert rule(webhooks=webhooks).webhooks == webhooks[1:]


@pytest.mark.parametrize(
    ("comparison", "holds"), [(">", [False, False, True]), (">=", [False, True, True])]
)
def test_comparisons(comparison: str, holds: list[bool]) -> None:
    made = rule(comparison=comparison, threshold=0.5)
    assert [made.holds(v) for v in (0.4, 0.5, 0.6)] == holds
    flipped = rule(comparison=comparison.replace(">", "<"), threshold=0.5)
    assert [flipped.holds(v) for v in (0.6, 0.5, 0.4)] == holds


# -- the service ---------------------------------------------------------------------------


def test_rules_are_created_listed_updated_and_deleted_with_an_audit_trail(store: Store) -> None:
    alerts = AlertService(store)
    created = alerts.create(rule(webhooks=["http://h.example/a"]), actor="ann")
    alerts.create(rule(name="cost", metric="cost", threshold=10, route="bot"), actor="ann")
    with pytest.raises(AlertRuleExists, match="exists already"):
        alerts.create(rule(), actor="ann")
    assert [r.name for r in alerts.list_rules()] == ["cost", "errors"]
    assert alerts.get("errors") == created and created.updated_by == "ann"

    changed = alerts.update("errors", rule(name="5xx", threshold=0.2, enabled=False), actor="bob")
    assert (changed.id, changed.name, changed.threshold) == (created.id, "5xx", 0.2)
    assert changed.webhooks == [] and not changed.enabled and changed.updated_by == "bob"
    assert [r.name for r in alerts.list_rules(enabled=True)] == ["cost"]
    with pytest.raises(AlertRuleExists):
        alerts.update("5xx", rule(name="cost"), actor="bob")
    with pytest.raises(AlertRuleNotFound, match="no alert rule named 'errors'"):
        alerts.get("errors")

    alerts.record_event(changed.id, "firing", at=T0, value=1.0, details={})
    alerts.delete("5xx", actor="cyd")
    with pytest.raises(AlertRuleNotFound):
        alerts.delete("5xx", actor="cyd")
    assert [r.name for r in alerts.list_rules()] == ["cost"] and stored_events(store) == []

    trail = audit_events(store, action="alert")
    assert [(e.action, e.actor, e.target) for e in trail] == [
        ("alert.delete", "cyd", "5xx"),
        ("alert.update", "bob", "errors"),
        ("alert.create", "ann", "cost"),
        ("alert.create", "ann", "errors"),
    ]
    assert trail[1].before is not None and trail[1].before["threshold"] == 0.5
    assert trail[1].after is not None and trail[1].after["name"] == "5xx"
    assert trail[0].before is not None and trail[0].after is None


def test_events_are_filtered_by_rule_state_and_time(store: Store) -> None:
    alerts = AlertService(store)
    a = alerts.create(rule(name="a"), actor="t")
    b = alerts.create(rule(name="b"), actor="t")
    first = alerts.record_event(a.id, "firing", at=T0, value=0.9, details={})
    assert first is not None and first.details["incident_id"] == first.id
    assert alerts.record_event(a.id, "firing", at=T0, value=0.9, details={}) is None
    assert alerts.record_event(b.id, "resolved", at=T0, value=0.0, details={}) is None
    alerts.record_event(b.id, "firing", at=T0 + timedelta(minutes=1), value=0.8, details={})
    resolved = alerts.record_event(
        a.id, "resolved", at=T0 + timedelta(minutes=2), value=0.1, details={"reason": "cleared"}
    )
    assert resolved is not None and resolved.details == {
        "reason": "cleared",
        "incident_id": first.id,
    }
    assert [(e.rule, e.state) for e in alerts.events()] == [
        ("a", "resolved"),
        ("b", "firing"),
        ("a", "firing"),
    ]
    assert [e.state for e in alerts.events(rule="a")] == ["resolved", "firing"]
    assert [e.rule for e in alerts.events(state="firing")] == ["b", "a"]
    assert [e.rule for e in alerts.events(since=T0 + timedelta(seconds=30))] == ["a", "b"]
    assert len(alerts.events(limit=1)) == 1
    latest = alerts.latest_events()
    assert {rule_id: e.state for rule_id, e in latest.items()} == {a.id: "resolved", b.id: "firing"}


# -- metrics -------------------------------------------------------------------------------


def _traffic(store: Store) -> list[dict[str, Any]]:
    """Random requests in, at the edges of and outside a 60 s window ending at T0; returns
    the ones inside it (as inserted)."""
    chance = random.Random(7)
    inside: list[dict[str, Any]] = []
    for i in range(60):
        fields: dict[str, Any] = {
            "route": chance.choice(["bot", "bot", "other"]),
            "status": chance.choice([200, 200, 200, 200, 400, 404, 429, 500, 503]),
            "latency_ms": round(chance.uniform(5, 2000), 3),
            "ttft_ms": chance.choice([None, round(chance.uniform(1, 300), 3)]),
            "prompt_tokens": chance.randint(0, 500),
            "completion_tokens": chance.randint(0, 500),
            "cost": round(chance.uniform(0, 0.01), 6),
            "energy_wh": round(chance.uniform(0, 0.5), 4),
            "pii": chance.choice([{}, {}, {"EMAIL": 1}, {"PHONE": 2, "IBAN": 1}]),
            "injection": chance.choice([[], [], [], ["ignore_previous"]]),
        }
        at = T0 - timedelta(seconds=chance.uniform(0, 59.9)) if i else T0  # T0 is in
        fields["id"] = log_request(store, at, **fields)
        inside.append(fields)
    # Just outside: at the window's open start, before it and after now.
    for at in (T0 - timedelta(seconds=60), T0 - timedelta(hours=1), T0 + timedelta(seconds=1)):
        log_request(
            store,
            at,
            route="bot",
            status=500,
            latency_ms=99_999.0,
            ttft_ms=9_999.0,
            prompt_tokens=10**6,
            cost=100.0,
            energy_wh=100.0,
            pii={"EMAIL": 1},
            injection=["x"],
        )
    return inside


def _expected(metric: str, rows: list[dict[str, Any]]) -> float | None:
    if not rows:
        return None
    share = {
        "error_rate": lambda r: r["status"] >= 500,
        "client_error_rate": lambda r: 400 <= r["status"] < 500,
    }
    total = {
        "requests": lambda r: 1,
        "tokens": lambda r: r["prompt_tokens"] + r["completion_tokens"],
        "cost": lambda r: r["cost"],
        "energy_wh": lambda r: r["energy_wh"],
        "pii_detections": lambda r: bool(r["pii"]),
        "injection_flags": lambda r: bool(r["injection"]),
    }
    percentile = {
        "p50_latency_ms": ("latency_ms", 50),
        "p95_latency_ms": ("latency_ms", 95),
        "p95_ttft_ms": ("ttft_ms", 95),
    }
    if metric in share:
        return sum(map(share[metric], rows)) / len(rows)
    if metric in total:
        return float(sum(map(total[metric], rows)))
    column, q = percentile[metric]
    values = [r[column] for r in rows if r[column] is not None]
    return float(numpy.percentile(values, q)) if values else None


REQUEST_METRICS = [
    m
    for m in METRICS
    if m not in ("negative_feedback_rate", "drift", "rollout_aborts", "online_quality")
]


@pytest.mark.parametrize("metric", REQUEST_METRICS)
def test_each_request_metric_counts_only_its_window_and_route(store: Store, metric: str) -> None:
    inside = _traffic(store)
    alerts = AlertService(store)
    threshold = 0.5 if metric.endswith("_rate") else 1.0
    for route in (None, "bot", "other"):
        rows = [r for r in inside if route is None or r["route"] == route]
        value, samples = alerts.evaluate_metric(
            rule(metric=metric, route=route, window_s=60, threshold=threshold), T0
        )
        expected = _expected(metric, rows)
        assert samples == len(rows)
        assert value == pytest.approx(expected, rel=1e-9), (metric, route)


@pytest.mark.parametrize("metric", REQUEST_METRICS)
def test_an_empty_window_has_no_rate_and_no_percentile(store: Store, metric: str) -> None:
    log_request(store, T0 - timedelta(minutes=5), status=500)
    value, samples = AlertService(store).evaluate_metric(
        rule(metric=metric, window_s=60, threshold=0.5), T0
    )
    is_total = metric in ("requests", "tokens", "cost", "energy_wh") or metric.endswith(
        ("_detections", "_flags")
    )
    assert samples == 0 and value == (0.0 if is_total else None)


def test_percentiles_interpolate_like_percentile_cont(store: Store) -> None:
    for latency in (10.0, 20.0, 30.0, 40.0):
        log_request(store, T0, latency_ms=latency, ttft_ms=None)
    alerts = AlertService(store)
    assert alerts.evaluate_metric(rule(metric="p50_latency_ms", threshold=1), T0) == (25.0, 4)
    p95, _ = alerts.evaluate_metric(rule(metric="p95_latency_ms", threshold=1), T0)
    assert p95 == pytest.approx(38.5)
    # Requests without a first token count as requests but give no TTFT.
    assert alerts.evaluate_metric(rule(metric="p95_ttft_ms", threshold=1), T0) == (None, 4)


def test_negative_feedback_rate_is_the_share_of_boolean_zeros(store: Store) -> None:
    bot = [log_request(store, T0 - timedelta(hours=2)) for _ in range(4)]
    other = log_request(store, T0 - timedelta(hours=2), route="other")
    feedback = [
        (bot[0], "boolean", 0.0, 10),
        (bot[1], "boolean", 1.0, 20),
        (bot[2], "boolean", 0.0, 30),
        (bot[3], "boolean", 1.0, 40),
        (bot[0], "number", 0.0, 10),  # a score of 0 is not a thumbs-down
        (other, "boolean", 0.0, 10),
        (bot[1], "boolean", 0.0, 120),  # outside the window
    ]
    with store.session() as session:
        for request_id, kind, number, ago in feedback:
            session.add(
                FeedbackRow(
                    request_id=request_id,
                    key_id="k",
                    name="thumbs",
                    kind=kind,
                    number=number,
                    source="human",
                    at=T0 - timedelta(seconds=ago),
                )
            )
    alerts = AlertService(store)
    metric = rule(metric="negative_feedback_rate", window_s=60, threshold=0.5)
    assert alerts.evaluate_metric(metric, T0) == (pytest.approx(3 / 5), 5)
    bot_only = metric.model_copy(update={"route": "bot"})
    assert alerts.evaluate_metric(bot_only, T0) == (0.5, 4)
    none = metric.model_copy(update={"route": "nobody"})
    assert alerts.evaluate_metric(none, T0) == (None, 0)


def test_drift_is_the_latest_report_per_route_in_the_window(store: Store) -> None:
    reports = [("bot", 0.9, 50), ("bot", 0.2, 10), ("other", 0.5, 20), ("bot", 1.0, 3600)]
    with store.session() as session:
        for route, share, ago in reports:
            at = T0 - timedelta(seconds=ago)
            session.add(
                DriftReportRow(
                    route=route,
                    at=at,
                    reference_from=at,
                    reference_to=at,
                    current_from=at,
                    current_to=at,
                    drifted=share > 0.3,
                    share_drifted=share,
                    report={},
                )
            )
    alerts = AlertService(store)
    drift = rule(metric="drift", window_s=60, threshold=0.3)
    assert alerts.evaluate_metric(drift.model_copy(update={"route": "bot"}), T0) == (0.2, 2)
    assert alerts.evaluate_metric(drift, T0) == (0.5, 3)  # the worst route's latest
    assert alerts.evaluate_metric(drift, T0 + timedelta(hours=2)) == (None, 0)


# -- the evaluator -------------------------------------------------------------------------


async def test_a_rule_waits_for_s_then_fires_once_and_resolves(store: Store) -> None:
    alerts = AlertService(store)
    made = alerts.create(rule(window_s=60, for_s=120), actor="t")
    evaluator = AlertEvaluator(alerts)
    phases = []
    for minute, status in enumerate([500, 500, 500, 500, 200]):
        now = T0 + timedelta(minutes=minute)
        log_requests(store, now - timedelta(seconds=1), 3, status=status)
        events = await evaluator.evaluate_once(now)
        phases.append((evaluator.states[made.id].phase, [e.state for e in events]))
    assert phases == [
        ("pending", []),
        ("pending", []),  # 60 s < for_s
        ("firing", ["firing"]),
        ("firing", []),  # no second firing
        ("inactive", ["resolved"]),
    ]
    events = alerts.events()
    assert [(e.state, e.value, e.at) for e in events] == [
        ("resolved", 0.0, T0 + timedelta(minutes=4)),
        ("firing", 1.0, T0 + timedelta(minutes=2)),
    ]
    assert events[1].details["pending_since"] == T0.isoformat()
    assert events[1].details["samples"] == 3 and events[0].details["reason"] == "cleared"
    assert events[0].details["incident_id"] == events[1].id == events[1].details["incident_id"]
    await evaluator.aclose()


async def test_a_condition_that_clears_while_pending_never_fires(store: Store) -> None:
    alerts = AlertService(store)
    made = alerts.create(rule(window_s=60, for_s=60), actor="t")
    evaluator = AlertEvaluator(alerts)
    statuses = [500, 200, 500, 500]  # the second spell starts its wait anew
    for minute, status in enumerate(statuses):
        now = T0 + timedelta(minutes=minute)
        log_request(store, now, status=status)
        await evaluator.evaluate_once(now)
        if minute == 1:
            assert evaluator.states[made.id].phase == "inactive"
    assert stored_events(store) == [("firing", 1.0)]
    assert alerts.events()[0].at == T0 + timedelta(minutes=3)
    await evaluator.aclose()


async def test_min_requests_keeps_thin_windows_quiet(store: Store) -> None:
    alerts = AlertService(store)
    made = alerts.create(rule(window_s=60, min_requests=5), actor="t")
    evaluator = AlertEvaluator(alerts)
    log_requests(store, T0, 4, status=500)
    assert await evaluator.evaluate_once(T0) == []
    assert evaluator.states[made.id].phase == "inactive"
    log_request(store, T0, status=500)
    assert [e.state for e in await evaluator.evaluate_once(T0)] == ["firing"]
    # The traffic stops: no data resolves the alert.
    later = T0 + timedelta(minutes=5)
    resolved = await evaluator.evaluate_once(later)
    assert [(e.state, e.value, e.details["reason"]) for e in resolved] == [
        ("resolved", None, "no data")
    ]
    await evaluator.aclose()


async def test_a_count_rule_with_min_requests_zero_fires_on_silence(store: Store) -> None:
    alerts = AlertService(store)
    alerts.create(
        rule(
            name="silence",
            metric="requests",
            comparison="<",
            threshold=1,
            min_requests=0,
            window_s=60,
        ),
        actor="t",
    )
    evaluator = AlertEvaluator(alerts)
    log_request(store, T0)
    assert await evaluator.evaluate_once(T0) == []
    events = await evaluator.evaluate_once(T0 + timedelta(minutes=2))
    assert [(e.state, e.value) for e in events] == [("firing", 0.0)]
    await evaluator.aclose()


async def test_a_restart_neither_fires_again_nor_loses_the_resolution(store: Store) -> None:
    alerts = AlertService(store)
    made = alerts.create(rule(window_s=60), actor="t")
    first = AlertEvaluator(alerts)
    log_request(store, T0, status=500)
    assert [e.state for e in await first.evaluate_once(T0)] == ["firing"]
    await first.aclose()

    restarted = AlertEvaluator(alerts)
    log_request(store, T0 + timedelta(minutes=1), status=500)
    assert await restarted.evaluate_once(T0 + timedelta(minutes=1)) == []
    assert restarted.states[made.id].phase == "firing"
    await restarted.aclose()

    # Down while the condition cleared: the next start records the resolution.
    again = AlertEvaluator(alerts)
    log_request(store, T0 + timedelta(minutes=5), status=200)
    assert [e.state for e in await again.evaluate_once(T0 + timedelta(minutes=5))] == ["resolved"]
    assert stored_events(store) == [("firing", 1.0), ("resolved", 0.0)]
    await again.aclose()


async def test_two_evaluators_on_one_store_fire_once(store: Store) -> None:
    alerts = AlertService(store)
    made = alerts.create(rule(window_s=60), actor="t")
    replicas = [AlertEvaluator(alerts), AlertEvaluator(alerts)]
    log_request(store, T0, status=500)
    fired = [await replica.evaluate_once(T0) for replica in replicas]
    assert [len(events) for events in fired] == [1, 0]
    assert all(replica.states[made.id].phase == "firing" for replica in replicas)
    assert stored_events(store) == [("firing", 1.0)]
    for replica in replicas:
        await replica.aclose()


async def test_disabling_a_firing_rule_resolves_it_and_deleting_forgets_it(
    store: Store,
) -> None:
    alerts = AlertService(store)
    made = alerts.create(rule(window_s=60), actor="t")
    other = alerts.create(rule(name="other", window_s=60), actor="t")
    evaluator = AlertEvaluator(alerts)
    log_request(store, T0, status=500)
    assert len(await evaluator.evaluate_once(T0)) == 2
    alerts.update("errors", made.model_copy(update={"enabled": False}), actor="t")
    events = await evaluator.evaluate_once(T0)
    assert [(e.rule, e.state, e.details["reason"]) for e in events] == [
        ("errors", "resolved", "disabled")
    ]
    assert made.id not in evaluator.states
    alerts.delete("other", actor="t")
    assert await evaluator.evaluate_once(T0) == []
    assert evaluator.states == {}
    assert other.id not in alerts.latest_events()
    await evaluator.aclose()


async def test_run_evaluates_in_the_background_until_cancelled(store: Store) -> None:
    alerts = AlertService(store)
    alerts.create(rule(window_s=3600), actor="t")
    log_request(store, datetime.now(UTC) - timedelta(seconds=5), status=500)
    evaluator = AlertEvaluator(alerts)
    task = asyncio.create_task(evaluator.run(0.05))
    for _ in range(100):
        if alerts.events():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await evaluator.aclose()
    assert [e.state for e in alerts.events()] == ["firing"]
