"""``modelyard usage``: requests, tokens and cost per key, route and UTC day."""

from __future__ import annotations

from datetime import datetime

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table
from modelyard.guard.usage import as_csv
from modelyard.guard.usage import usage as usage_rows


@click.command()
@click.option("--key", "key_id", help="Only this key id.")
@click.option("--route", help="Only this route.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC).")
@click.option("--csv", "as_csv_flag", is_flag=True, help="CSV for billing, on stdout.")
@json_option
def usage(
    key_id: str | None,
    route: str | None,
    since: datetime | None,
    until: datetime | None,
    as_csv_flag: bool,
    as_json: bool,
) -> None:
    """Usage per key, route and day, from the request log."""
    with open_home_store() as store:
        rows = usage_rows(
            store,
            key_id=key_id,
            route=route,
            since=since.date() if since else None,
            until=until.date() if until else None,
        )
    if as_csv_flag:
        click.echo(as_csv(rows), nl=False)
    elif as_json:
        print_json(rows)
    else:
        print_table(
            "Usage",
            ["day", "key", "route", "requests", "errors", "prompt", "completion", "cost"],
            [
                [
                    r.day,
                    r.key_id,
                    r.route,
                    r.requests,
                    r.errors,
                    r.prompt_tokens,
                    r.completion_tokens,
                    f"{r.cost:.6f}",
                ]
                for r in rows
            ],
        )
