"""``modelyard label DATASET --teacher ROUTE``: a labelled version of a dataset, answered
by a teacher route through the serving path; running it again continues where it stopped."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.progress import Progress

from modelyard.cli.common import json_option, open_home_store, print_json, print_table
from modelyard.cli.eval import serving_client
from modelyard.config import Settings
from modelyard.improve.distil.labelling import label, run_detail, start_labelling
from modelyard.improve.distil.protocol import DEFAULT_TEMPLATE, LabelRequest, LabelRunDetail
from modelyard.services import local_actor
from modelyard.store import Store


@click.command(name="label")
@click.argument("dataset")
@click.option("--teacher", required=True, help="The route that labels (a public model name).")
@click.option("--label", "labels", multiple=True, help="A label of the label set (repeat).")
@click.option("--labels-from", help="Take the label set from this field's values.")
@click.option("--input-field", help="The text's field (default: input, text, question, prompt).")
@click.option("--label-field", default="label", show_default=True, help="Where labels go.")
@click.option("--system", help="Jinja2 system prompt (default: the label set, answer one).")
@click.option("--template", default=DEFAULT_TEMPLATE, show_default=True, help="User message.")
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--max-tokens", type=click.IntRange(1), default=32, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--name", help="The labelled dataset (default: DATASET-labelled).")
@click.option("--fresh", is_flag=True, help="Start over instead of continuing the last run.")
@click.option("--base-url", help="A running server (default: start the app in-process).")
@click.option("--api-key", help="Key for --base-url (default: MODELYARD_API_KEY).")
@json_option
def label_command(dataset: str, **options: Any) -> None:
    """Label DATASET[@VERSION] with a teacher: every item through /v1/chat/completions
    (keys, guard, request log, cost and energy apply), then a new labelled version. Run
    again, it continues the last run of the same labelling: answered items are not asked
    again, failed ones are."""
    request = _request(dataset, options)
    settings = Settings()
    with open_home_store() as store:
        run = start_labelling(store, request, local_actor())

        async def go(store: Store) -> None:
            with Progress(transient=True, disable=options["as_json"]) as bar:
                tracked = bar.add_task(f"labelling with {request.teacher}", total=None)
                async with serving_client(
                    settings, options["base_url"], options["api_key"]
                ) as client:
                    await label(
                        client,
                        store,
                        run.id,
                        lambda done, total: bar.update(tracked, completed=done, total=total),
                    )

        asyncio.run(go(store))
        detail = run_detail(store, run.id)
    if options["as_json"]:
        print_json(detail)
        return
    show_run(detail)


def _request(dataset: str, options: dict[str, Any]) -> LabelRequest:
    return LabelRequest.model_validate(
        {
            "dataset": dataset,
            "teacher": options["teacher"],
            "labels": list(options["labels"]) or None,
            "labels_from": options["labels_from"],
            "input_field": options["input_field"],
            "label_field": options["label_field"],
            "system": options["system"],
            "template": options["template"],
            "generation": {
                "temperature": options["temperature"],
                "max_tokens": options["max_tokens"],
            },
            "concurrency": options["concurrency"],
            "name": options["name"],
            "fresh": options["fresh"],
        }
    )


def show_run(run: LabelRunDetail) -> None:
    counts = run.counts
    click.echo(
        f"label run {run.id}: {run.dataset} by {run.teacher} "
        f"({', '.join(run.versions) or 'no answer'}), {run.status}"
    )
    print_table(
        "Counts",
        ["items", "answered", "labelled", "outside the label set", "failed"],
        [[counts.items, counts.done, counts.labelled, counts.unmapped, counts.failed]],
    )
    examples = [("outside", e) for e in run.unmapped_examples] + [
        ("failed", e) for e in run.failed_examples
    ]
    if examples:
        print_table(
            "Left out",
            ["why", "item", "text", "answer or error"],
            [[why, e.item_index, e.text[:80], e.error or e.answer[:80]] for why, e in examples],
        )
    if run.result is not None:
        click.echo(f"labelled version: {run.result}")
    elif run.message:
        click.echo(run.message)
