"""``modelyard audit``: who changed keys, aliases, versions and policies, and how."""

from __future__ import annotations

import json

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.guard.audit import audit_events


@click.command()
@click.option("--action", help="Actions starting with this (key, key.revoke, alias, policy…).")
@click.option("--target", help="Only this target (a key id, model:alias, route).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def audit(action: str | None, target: str | None, limit: int, as_json: bool) -> None:
    """The audit log, newest first."""
    with open_home_store() as store:
        events = audit_events(store, action=action, target=target, limit=limit)
    if as_json:
        print_json(events)
        return
    print_table(
        "Audit log",
        ["when", "actor", "action", "target", "before", "after"],
        [
            [
                when(e.at),
                e.actor,
                e.action,
                e.target,
                json.dumps(e.before, ensure_ascii=False) if e.before is not None else None,
                json.dumps(e.after, ensure_ascii=False) if e.after is not None else None,
            ]
            for e in events
        ],
    )
