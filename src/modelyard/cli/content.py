"""``modelyard content rotate-key|keys|purge``: encryption and retention of stored
prompts and responses."""

from __future__ import annotations

import click

from modelyard.cli.common import open_home_store
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.guard.retention import purge_content
from modelyard.services import local_actor
from modelyard.store.audit import append_audit


@click.group()
def content() -> None:
    """Encryption keys and retention of stored prompts and responses."""


@content.command("rotate-key")
def rotate_key() -> None:
    """Add a new encryption key to home/content.keys; new content uses it, old rows stay
    readable with the keys before it. Restart servers (or roll them) to pick it up."""
    settings = Settings()
    if settings.content_keys is not None:
        raise click.ClickException(
            "content keys come from MODELYARD_CONTENT_KEYS: rotate by putting a new key first "
            "in that list (keep the old ones after it)"
        )
    old, new = crypto.rotate(settings.ensure_home())
    with open_home_store() as store, store.session() as session:
        append_audit(
            session,
            actor=local_actor(),
            action="encryption.rotate",
            target="content.keys",
            before={"primary": old},
            after={"primary": new},
        )
    click.echo(f"content key rotated: {old} → {new} (both in {settings.home / crypto.KEY_FILE})")


@content.command("keys")
def list_keys() -> None:
    """Ids of the content keys (never the keys); the first one encrypts."""
    settings = Settings()
    cipher = crypto.cipher_for(settings)
    click.echo(f"primary: {cipher.primary}")
    for key_id in cipher.keys:
        click.echo(f"  {key_id}")


@content.command("purge")
@click.option(
    "--days",
    type=click.IntRange(0),
    default=None,
    help="Erase content older than this (default: the retention setting).",
)
def purge(days: int | None) -> None:
    """Erase stored prompts and responses older than the retention period now."""
    settings = Settings()
    keep = settings.content_retention_days if days is None else days
    with open_home_store() as store:
        erased = purge_content(store, keep)
    click.echo(f"erased the content of {erased} requests older than {keep} days")
