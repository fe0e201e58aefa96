"""``modelyard distil DATASET --model MODEL``: a ``classifier`` student trained on a
labelled dataset version, registered as the next version of MODEL."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table
from modelyard.cli.eval import serving_client
from modelyard.config import Settings
from modelyard.improve.distil.distillation import distil, start_distillation
from modelyard.improve.distil.protocol import DistillationOut, DistilRequest
from modelyard.services import local_actor
from modelyard.store import Store


@click.command(name="distil")
@click.argument("dataset")
@click.option("-m", "--model", required=True, help="The model the student is a version of.")
@click.option("--input-field", help="The text's field (default: input, text, question, prompt).")
@click.option("--label-field", default="label", show_default=True)
@click.option("--gold-field", help="Also score the hold-out against this field (true labels).")
@click.option(
    "--holdout",
    type=click.FloatRange(0.05, 0.5),
    default=0.2,
    show_default=True,
    help="Share held out per label when the items have no split.",
)
@click.option("--c", "c", type=click.FloatRange(0, min_open=True), default=10.0, show_default=True)
@click.option("--max-iter", type=click.IntRange(10, 100_000), default=1000, show_default=True)
@click.option("--balanced", is_flag=True, help="Weigh rare labels up (class_weight=balanced).")
@click.option("--embedding-model", default="default-embedding", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--notes", default="", help="Appended to the version's notes.")
@click.option("--base-url", help="A running server (default: start the app in-process).")
@click.option("--api-key", help="Key for --base-url (default: MODELYARD_API_KEY).")
@json_option
def distil_command(dataset: str, **options: Any) -> None:
    """Train a student on DATASET[@VERSION] (its texts embedded through
    /v1/embeddings, a logistic-regression head on the train split, scored on the hold-out)
    and register it as the next version of MODEL, with its lineage."""
    request = DistilRequest.model_validate(
        {
            "dataset": dataset,
            "model": options["model"],
            "input_field": options["input_field"],
            "label_field": options["label_field"],
            "gold_field": options["gold_field"],
            "holdout": options["holdout"],
            "c": options["c"],
            "max_iter": options["max_iter"],
            "class_weight": "balanced" if options["balanced"] else None,
            "embedding_model": options["embedding_model"],
            "seed": options["seed"],
            "notes": options["notes"],
        }
    )
    settings = Settings()
    with open_home_store() as store:
        started = start_distillation(store, request, local_actor())

        async def go(store: Store) -> DistillationOut:
            async with serving_client(settings, options["base_url"], options["api_key"]) as client:
                return await distil(client, store, settings.home, started.id)

        out = asyncio.run(go(store))
    if options["as_json"]:
        print_json(out)
        return
    show_distillation(out)
    if out.status == "failed":
        raise click.ClickException(out.message or "the distillation failed")


def show_distillation(out: DistillationOut) -> None:
    where = f"{out.model}@{out.version}" if out.version is not None else out.model
    click.echo(f"distillation {out.id}: {out.dataset} -> {where}, {out.status}")
    metrics = out.metrics
    print_table(
        "Metrics",
        ["metric", "value"],
        [[name, _value(value)] for name, value in metrics.items()],
    )
    teacher = out.lineage.get("teacher")
    if teacher:
        click.echo(f"teacher: {teacher.get('route')} ({', '.join(teacher.get('versions', []))})")


def _value(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
