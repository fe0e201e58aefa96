"""``modelyard drift run|list|show``: drift reports of request features per route."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.observe.drift_jobs import DriftScheduler, get_report, list_reports, run_drift
from modelyard.observe.protocol import DriftReportOut, DriftRun


@click.group()
def drift() -> None:
    """Compare a current window of requests with a reference window, per route."""


def _summary(reports: list[DriftReportOut]) -> None:
    print_table(
        "Drift reports",
        ["id", "when", "route", "drifted", "share", "drifted columns"],
        [
            [
                r.id,
                when(r.at),
                r.route,
                "yes" if r.drifted else "no",
                f"{r.share_drifted:.2f}",
                " ".join(c["column"] for c in r.report["columns"] if c["drifted"]) or None,
            ]
            for r in reports
        ],
    )


@drift.command("run")
@click.option("--route", help="Only this route (default: every route with enough traffic).")
@click.option("--current-hours", type=float, default=None, help="Current window, hours.")
@click.option("--reference-days", type=float, default=None, help="Reference window, days.")
@json_option
def run(
    route: str | None,
    current_hours: float | None,
    reference_days: float | None,
    as_json: bool,
) -> None:
    """Compute drift reports now and store them."""
    settings = Settings()
    windows = DriftRun(
        route=route,
        current_hours=current_hours or settings.drift_current_hours,
        reference_days=reference_days or settings.drift_reference_days,
    )
    with open_home_store() as store:
        # No engines here: the CLI's reports leave prompt embeddings out.
        scheduler = DriftScheduler(store, crypto.cipher_for(settings).open, windows)
        if route is None:
            reports = asyncio.run(scheduler.run_once())
        else:
            window = scheduler.windows(datetime.now(UTC))
            reports = [
                asyncio.run(run_drift(store, route, window, crypto.cipher_for(settings).open))
            ]
    if as_json:
        print_json(reports)
    elif not reports:
        click.echo("no route has enough requests in both windows for a drift report")
    else:
        _summary(reports)


@drift.command("list")
@click.option("--route", help="Only this route.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def list_command(route: str | None, limit: int, as_json: bool) -> None:
    """Stored reports, newest first."""
    with open_home_store() as store:
        reports = list_reports(store, route, limit)
    if as_json:
        print_json(reports)
    else:
        _summary(reports)


@drift.command("show")
@click.argument("report_id", type=int)
@json_option
def show(report_id: int, as_json: bool) -> None:
    """One report: each column's test, statistic, threshold and verdict."""
    with open_home_store() as store:
        report = get_report(store, report_id)
    if as_json:
        print_json(report)
        return
    click.echo(
        f"{report.route}: current {when(report.current_from)} to {when(report.current_to)} "
        f"vs reference {when(report.reference_from)} to {when(report.reference_to)}; "
        f"{'drifted' if report.drifted else 'no drift'} ({report.share_drifted:.2f} of columns)"
    )
    print_table(
        "Columns",
        ["column", "kind", "test", "statistic", "p-value", "threshold", "drifted", "rows"],
        [
            [
                c["column"],
                c["kind"],
                c["test"],
                c["statistic"],
                c["p_value"],
                c["threshold"],
                "yes" if c["drifted"] else "no",
                f"{c['reference_rows']}/{c['current_rows']}",
            ]
            for c in report.report["columns"]
        ],
    )
