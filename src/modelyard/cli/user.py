"""``modelyard user show|export|erase``: a user's data on request (the `user` field a
client sends), straight from the store."""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.guard.sessions import load_session_secret
from modelyard.observe.userdata import erase_user, export_user, record_export, summarise_user
from modelyard.services import local_actor


def _secret(settings: Settings) -> bytes:
    """The key of erased users' pseudonyms: the servers' session secret."""
    configured = settings.session_secret.get_secret_value() if settings.session_secret else None
    return load_session_secret(settings.ensure_home(), configured)


@click.group()
def user() -> None:
    """A user's data on request: what is stored about the `user` a client sends, exported
    or erased (usage and cost figures stay)."""


@user.command("show")
@click.argument("user_id", metavar="USER")
@json_option
def show(user_id: str, as_json: bool) -> None:
    """How many requests, stored contents, feedback and dataset items name USER."""
    settings = Settings()
    with open_home_store() as store:
        found = summarise_user(store, user_id, _secret(settings))
    if as_json:
        print_json(found)
        return
    print_table(
        f"User {user_id}",
        ["requests", "with content", "feedback", "dataset items", "datasets", "first", "last"],
        [
            [
                found.requests,
                found.with_content,
                found.feedback,
                found.dataset_items,
                " ".join(found.datasets) or None,
                when(found.first_at) if found.first_at else None,
                when(found.last_at) if found.last_at else None,
            ]
        ],
    )
    click.echo(f"an erasure writes {found.pseudonym} instead (the audit records' target)")


@user.command("export")
@click.argument("user_id", metavar="USER")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write it here."
)
def export(user_id: str, output: Path | None) -> None:
    """Everything stored about USER as one JSON document (content decrypted with this
    machine's content keys), on stdout or in a file; audited."""
    settings = Settings()
    cipher = crypto.cipher_for(settings)
    with open_home_store() as store:
        document = export_user(store, cipher.open, user_id)
        record_export(store, document, local_actor(), _secret(settings))
    text = document.model_dump_json(indent=2)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    click.echo(
        f"wrote {output}: {len(document.requests)} requests, "
        f"{len(document.dataset_items)} dataset items",
        err=True,
    )


@user.command("erase")
@click.argument("user_id", metavar="USER")
@click.option("--yes", is_flag=True, help="Erase: without it nothing is changed.")
@json_option
def erase(user_id: str, yes: bool, as_json: bool) -> None:
    """Erase what is stored about USER in one transaction: content, feedback comments, the
    dataset items made from their requests; rows, tokens and cost stay, under a pseudonym."""
    settings = Settings()
    with open_home_store() as store:
        if not yes:
            found = summarise_user(store, user_id, _secret(settings))
            raise click.ClickException(
                f"this erases {found.requests} requests ({found.with_content} with content), "
                f"{found.feedback} feedback and {found.dataset_items} dataset items of "
                f"'{user_id}' and cannot be undone: add --yes"
            )
        done = erase_user(store, user_id, local_actor(), _secret(settings))
    if as_json:
        print_json(done)
        return
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in done.counts)
    click.echo(f"erased '{user_id}' as {done.pseudonym}: {counts}")
    if done.datasets:
        click.echo(f"dataset versions changed (each notes it): {' '.join(done.datasets)}")
    click.echo(f"audit record {done.audit_id}")
