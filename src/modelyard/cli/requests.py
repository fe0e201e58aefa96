"""``modelyard requests list|show|export``: the request log, straight from the store."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.observe.protocol import RequestOut
from modelyard.observe.queries import (
    RequestFilter,
    as_csv,
    as_jsonl,
    export_rows,
    get_request,
    list_requests,
)


def _filters(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option("--key", "key_id", help="Only this key id."),
            click.option("--route", help="Only this route."),
            click.option("--version", help="Only this version (model@n)."),
            click.option("--status", type=int, help="Only this HTTP status."),
            click.option("--since", type=click.DateTime(), help="From (UTC)."),
            click.option("--until", type=click.DateTime(), help="Before (UTC)."),
            click.option("--feedback", help="Only requests with feedback of this name (* any)."),
            click.option("--language", help="Only prompts in this language (en, zh, ...)."),
        ]
    ):
        f = option(f)
    return f


def _where(
    key_id: str | None = None,
    route: str | None = None,
    version: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    feedback: str | None = None,
    language: str | None = None,
) -> RequestFilter:
    return RequestFilter(
        key_id,
        route,
        version,
        status,
        since.replace(tzinfo=UTC) if since else None,
        until.replace(tzinfo=UTC) if until else None,
        feedback,
        language,
    )


@click.group()
def requests() -> None:
    """The request log: list, show one (content decrypted), export JSONL or CSV."""


@requests.command("list")
@_filters
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def list_command(limit: int, as_json: bool, **filters: Any) -> None:
    """Newest requests first."""
    with open_home_store() as store:
        rows = list_requests(store, _where(**filters), limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        "Requests",
        ["when", "id", "key", "route", "version", "status", "ms", "tokens", "answer", "flags"],
        [
            [
                when(r.at),
                r.id,
                r.key_id,
                r.route,
                r.version,
                f"{r.status} {r.error_code or ''}".strip(),
                f"{r.latency_ms:.0f}",
                f"{r.prompt_tokens}/{r.completion_tokens}",
                _answer(r),
                " ".join([*r.pii, *r.injection, *([r.format_error] if r.format_error else [])])
                or None,
            ]
            for r in rows
        ],
    )


def _answer(r: RequestOut) -> str | None:
    """How the answer ended, the JSON format asked and the tools called, in a few words:
    ``tool_calls tools:get_weather``, ``stop json_schema:person``."""
    words = [r.finish_reason or ""]
    if r.response_format and r.response_format != "text":
        words.append(f"{r.response_format}:{r.schema_name}" if r.schema_name else r.response_format)
    if r.tool_names:
        words.append("tools:" + ",".join(r.tool_names))
    return " ".join(word for word in words if word) or None


@requests.command("show")
@click.argument("request_id")
def show(request_id: str) -> None:
    """One request with its content (decrypted with this machine's content keys)."""
    settings = Settings()
    cipher = crypto.cipher_for(settings)
    with open_home_store() as store:
        print_json(get_request(store, request_id, cipher.open))


@requests.command("export")
@_filters
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
def export(fmt: str, **filters: Any) -> None:
    """Every matching row, oldest first, on stdout (metadata, not content)."""
    with open_home_store() as store:
        rows = export_rows(store, _where(**filters))
        for chunk in (as_csv if fmt == "csv" else as_jsonl)(rows):
            sys.stdout.write(chunk)
