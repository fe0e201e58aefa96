"""``modelyard alert add|list|show|delete|events``: alert rules over the request log."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, cast

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.observe.alerts.errors import AlertRuleNotFound
from modelyard.observe.alerts.protocol import (
    METRICS,
    AlertEventOut,
    AlertRule,
    AlertRuleOut,
    EventState,
)
from modelyard.observe.alerts.service import AlertService
from modelyard.services import local_actor
from modelyard.store.tables import utcnow

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType[int]):
    """Seconds, written ``90``, ``90s``, ``5m``, ``1h`` or ``7d``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(value))
        if match is None:
            self.fail(f"'{value}' is not a duration: write 90, 90s, 5m, 1h or 7d", param, ctx)
        return int(match[1]) * UNITS[match[2] or "s"]


DURATION = Duration()


@click.group()
def alert() -> None:
    """Rules that watch error rates, latency, cost, PII, feedback and drift, and call
    webhooks when they fire and resolve."""


@alert.command("add")
@click.argument("name")
@click.option("--metric", required=True, type=click.Choice(METRICS))
@click.option(
    "--comparison", type=click.Choice([">", ">=", "<", "<="]), default=">", show_default=True
)
@click.option("--threshold", required=True, type=float, help="Shares are 0..1 (0.05 is 5%).")
@click.option("--route", help="Only this route (public model name); all routes if left out.")
@click.option("--window", type=DURATION, default="5m", show_default=True, help="Look-back.")
@click.option(
    "--for", "for_s", type=DURATION, default="0", show_default=True, help="Hold before firing."
)
@click.option(
    "--severity",
    type=click.Choice(["info", "warning", "critical"]),
    default="warning",
    show_default=True,
)
@click.option("--webhook", "webhooks", multiple=True, help="URL to POST events to (repeatable).")
@click.option("--min-requests", type=int, default=1, show_default=True)
@click.option("--disabled", is_flag=True, help="Store the rule without evaluating it.")
@click.option("--replace", is_flag=True, help="Replace the rule NAME if it exists.")
@json_option
def add(
    name: str,
    metric: str,
    comparison: str,
    threshold: float,
    route: str | None,
    window: int,
    for_s: int,
    severity: str,
    webhooks: tuple[str, ...],
    min_requests: int,
    disabled: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Add the alert rule NAME (or, with --replace, change it)."""
    rule = AlertRule.model_validate(
        {
            "name": name,
            "metric": metric,
            "comparison": comparison,
            "threshold": threshold,
            "route": route,
            "window_s": window,
            "for_s": for_s,
            "severity": severity,
            "webhooks": list(webhooks),
            "min_requests": min_requests,
            "enabled": not disabled,
        }
    )
    with open_home_store() as store:
        service = AlertService(store)
        try:
            out = service.update(name, rule, local_actor()) if replace else None
        except AlertRuleNotFound:
            out = None
        out = out or service.create(rule, actor=local_actor())
    _report_rules([out], as_json)


@alert.command("list")
@json_option
def list_rules(as_json: bool) -> None:
    """Every alert rule."""
    with open_home_store() as store:
        rules = AlertService(store).list_rules()
    _report_rules(rules, as_json)


@alert.command("show")
@click.argument("name")
@click.option("--events", "limit", type=click.IntRange(0, 1000), default=10, show_default=True)
@json_option
def show(name: str, limit: int, as_json: bool) -> None:
    """The rule NAME and its latest events."""
    with open_home_store() as store:
        service = AlertService(store)
        rule = service.get(name)
        events = service.events(rule=name, limit=limit) if limit else []
    if as_json:
        print_json(
            {
                **rule.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
        return
    _report_rules([rule], as_json=False)
    _report_events(events)


@alert.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Remove the rule NAME and its events."""
    with open_home_store() as store:
        AlertService(store).delete(name, actor=local_actor())
    click.echo(f"alert rule {name} removed")


@alert.command("events")
@click.option("--rule", help="Only this rule's events.")
@click.option("--state", type=click.Choice(["firing", "resolved"]))
@click.option("--since", type=DURATION, help="Only this recent (e.g. 24h).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def events(
    rule: str | None, state: str | None, since: int | None, limit: int, as_json: bool
) -> None:
    """Firing and resolved events, newest first."""
    start = utcnow() - timedelta(seconds=since) if since is not None else None
    with open_home_store() as store:
        found = AlertService(store).events(
            rule=rule,
            state=cast(EventState | None, state),
            since=start,
            limit=limit,
        )
    if as_json:
        print_json(found)
        return
    _report_events(found)


def _report_rules(rules: list[AlertRuleOut], as_json: bool) -> None:
    if as_json:
        print_json(rules)
        return
    print_table(
        "Alert rules",
        ["name", "condition", "route", "window", "for", "severity", "webhooks", "enabled"],
        [
            [
                r.name,
                f"{r.metric} {r.comparison} {r.threshold:g}",
                r.route or "all",
                f"{r.window_s}s",
                f"{r.for_s}s",
                r.severity,
                len(r.webhooks),
                r.enabled,
            ]
            for r in rules
        ],
    )


def _report_events(found: list[AlertEventOut]) -> None:
    print_table(
        "Alert events",
        ["id", "when", "rule", "state", "value", "deliveries"],
        [
            [
                e.id,
                when(e.at),
                e.rule,
                e.state,
                None if e.value is None else f"{e.value:g}",
                "; ".join(
                    f"{d.url}: {d.status or d.error} ({d.attempts} attempts)" for d in e.deliveries
                )
                or None,
            ]
            for e in found
        ],
    )
