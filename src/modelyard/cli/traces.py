"""``modelyard traces check``: whether the configured collector takes this server's traces."""

from __future__ import annotations

import click

from modelyard.cli.common import json_option, print_json
from modelyard.config import Settings
from modelyard.observe.tracing import CHECK_SPAN, check_export


@click.group()
def traces() -> None:
    """OpenTelemetry traces of inference requests (MODELYARD_TRACING, docs/observe.md)."""


@traces.command("check")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 60),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the collector, retries included.",
)
@json_option
def check(timeout: float, as_json: bool) -> None:
    """Send one test span where the server sends its traces (MODELYARD_TRACING_ENDPOINT or
    OTEL_EXPORTER_OTLP_*), whether tracing is on or not; exit 1 if the collector does not
    accept it."""
    found = check_export(Settings(), timeout)
    if as_json:
        print_json(
            {
                "ok": found.ok,
                "endpoint": found.endpoint,
                "endpoint_from": found.endpoint_from,
                "trace_id": found.trace_id,
                "detail": found.detail,
                "tracing": found.tracing,
            }
        )
    else:
        click.echo(f"endpoint:  {found.endpoint} (from {found.endpoint_from})")
        click.echo(f"tracing:   {found.tracing} (MODELYARD_TRACING)")
        click.echo(f"test span: '{CHECK_SPAN}', trace {found.trace_id}")
    if not found.ok:
        raise click.ClickException(f"the collector did not take the span: {found.detail}")
    if not as_json:
        click.echo("result:    accepted")
