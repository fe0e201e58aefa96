"""The other faces of alerts: the JSON API (``/api/alerts``) and ``modelyard alert``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from modelyard.cli.alert import alert
from modelyard.cli.common import open_home_store
from modelyard.config import Settings
from modelyard.observe.alerts import AlertRuleExists, AlertService
from modelyard.registry import Registry
from tests.conftest import AppClient, app_client, bearer, new_key
from tests.observe.test_alerts import T0

pytestmark = pytest.mark.anyio

RULE: dict[str, Any] = {
    "name": "bot-errors",
    "metric": "error_rate",
    "route": "bot",
    "threshold": 0.05,
    "window_s": 300,
    "for_s": 60,
    "severity": "critical",
    "webhooks": ["https://hooks.example/alerts"],
}


@pytest.fixture
async def alerts_api(home_registry: Registry) -> AsyncIterator[AppClient]:
    """The full app as its admin."""
    async with app_client(Settings()) as client:
        yield client


async def test_admins_manage_rules_and_readers_read_them(alerts_api: AppClient) -> None:
    viewer = bearer(await new_key(alerts_api, role="viewer"))
    developer = bearer(await new_key(alerts_api, role="developer"))

    created = await alerts_api.post("/api/alerts/rules", json=RULE)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in RULE} == RULE
    assert body["comparison"] == ">" and body["updated_by"].startswith("key:")

    again = await alerts_api.post("/api/alerts/rules", json=RULE)
    assert again.status_code == 409 and again.json()["error"]["code"] == "alert_rule_exists"
    wrong = await alerts_api.post("/api/alerts/rules", json={**RULE, "name": "x", "threshold": 5})
    assert wrong.status_code == 400 and "0.05 for 5%" in wrong.json()["error"]["message"]
    refused = await alerts_api.post("/api/alerts/rules", json={**RULE, "name": "y"}, headers=viewer)
    assert refused.status_code == 403

    listed = await alerts_api.get("/api/alerts/rules", headers=viewer)
    assert [r["name"] for r in listed.json()["data"]] == ["bot-errors"]
    assert (await alerts_api.get("/api/alerts/rules", headers=developer)).status_code == 403
    one = await alerts_api.get("/api/alerts/rules/bot-errors", headers=viewer)
    assert one.json()["id"] == body["id"]
    missing = await alerts_api.get("/api/alerts/rules/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "alert_rule_not_found"

    changed = await alerts_api.put(
        "/api/alerts/rules/bot-errors", json={**RULE, "threshold": 0.1, "enabled": False}
    )
    assert changed.status_code == 200 and changed.json()["threshold"] == 0.1
    assert not changed.json()["enabled"]
    put_by_viewer = await alerts_api.put("/api/alerts/rules/bot-errors", json=RULE, headers=viewer)
    assert put_by_viewer.status_code == 403
    gone = await alerts_api.put("/api/alerts/rules/nope", json=RULE)
    assert gone.status_code == 404

    path = "/api/alerts/rules/bot-errors"
    assert (await alerts_api.delete(path, headers=viewer)).status_code == 403
    assert (await alerts_api.delete(path)).status_code == 204
    assert (await alerts_api.delete(path)).status_code == 404
    audit = (await alerts_api.get("/api/audit", params={"action": "alert"})).json()["data"]
    assert [e["action"] for e in audit] == ["alert.delete", "alert.update", "alert.create"]


async def test_events_are_listed_with_filters(alerts_api: AppClient) -> None:
    alerts = AlertService(alerts_api.services.store)
    rule = (await alerts_api.post("/api/alerts/rules", json=RULE)).json()
    alerts.record_event(rule["id"], "firing", at=T0, value=0.2, details={"samples": 9})
    viewer = bearer(await new_key(alerts_api, role="viewer"))
    params = {"rule": "bot-errors"}
    events = await alerts_api.get("/api/alerts/events", params=params, headers=viewer)
    assert events.status_code == 200, events.text
    (event,) = events.json()["data"]
    assert (event["rule"], event["state"], event["value"]) == ("bot-errors", "firing", 0.2)
    assert event["details"]["samples"] == 9 and event["deliveries"] == []
    resolved = await alerts_api.get("/api/alerts/events", params={"state": "resolved"})
    assert resolved.json()["data"] == []
    bad = await alerts_api.get("/api/alerts/events", params={"state": "pending"})
    assert bad.status_code == 400
    too_many = await alerts_api.get("/api/alerts/events", params={"limit": 5000})
    assert too_many.status_code == 400


def test_the_cli_adds_lists_shows_and_deletes_rules() -> None:
    cli = CliRunner()

    def run(*args: str) -> str:
        result = cli.invoke(alert, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    added = json.loads(
        run(
            "add",
            "slow",
            "--metric",
            "p95_latency_ms",
            "--threshold",
            "1500",
            "--window",
            "10m",
            "--for",
            "2m",
            "--webhook",
            "http://h.example/a",
            "--json",
        )
    )
    assert len(added) == 1
    assert (added[0]["window_s"], added[0]["for_s"], added[0]["route"]) == (600, 120, None)
    assert "slow" in run("list")

    duplicate = cli.invoke(alert, ["add", "slow", "--metric", "cost", "--threshold", "1"])
    assert isinstance(duplicate.exception, AlertRuleExists)
    replaced = json.loads(
        run(
            "add",
            "slow",
            "--metric",
            "cost",
            "--threshold",
            "3",
            "--route",
            "bot",
            "--replace",
            "--json",
        )
    )
    assert (replaced[0]["metric"], replaced[0]["route"]) == ("cost", "bot")
    assert replaced[0]["webhooks"] == [] and replaced[0]["id"] == added[0]["id"]
    bad_window = cli.invoke(
        alert, ["add", "x", "--metric", "cost", "--threshold", "1", "--window", "5 minutes"]
    )
    assert bad_window.exit_code == 2 and "not a duration" in bad_window.output

    with open_home_store() as store:
        long_ago = T0 - timedelta(days=3650)
        AlertService(store).record_event(
            added[0]["id"], "firing", at=long_ago, value=4.0, details={}
        )
    shown = json.loads(run("show", "slow", "--json"))
    assert shown["name"] == "slow" and [e["value"] for e in shown["events"]] == [4.0]
    assert "firing" in run("show", "slow")
    events = json.loads(run("events", "--rule", "slow", "--state", "firing", "--json"))
    assert [e["rule"] for e in events] == ["slow"]
    assert json.loads(run("events", "--since", "1h", "--json")) == []
    assert "removed" in run("delete", "slow")
    assert json.loads(run("list", "--json")) == []
