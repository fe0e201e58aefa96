"""``modelyard review create|list|show|next|decide|undo|finish``: review queues over
dataset versions, from a terminal; the reviewer is ``user@host``."""

from __future__ import annotations

import json
from typing import Any, cast

import click
from pydantic import TypeAdapter

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.improve.review.finish import finish_review
from modelyard.improve.review.protocol import (
    DecisionIn,
    FinishRequest,
    ReviewCreate,
    ReviewItemOut,
    ReviewOut,
    ReviewStatus,
    ReviewStep,
)
from modelyard.improve.review.queue import ReviewQueue
from modelyard.improve.review.reviews import Reviews
from modelyard.services import local_actor

KEPT = {"keep": "kept", "drop": "dropped"}


@click.group()
def review() -> None:
    """Go through a dataset version's items one by one (accept, correct, reject, skip),
    several reviewers at once; finishing writes the decisions as a new version."""


@review.command("create")
@click.argument("dataset")
@click.option("--split", help="Only items of this split.")
@click.option("--where", "where", multiple=True, help="FIELD=VALUE (a JSON value or text).")
@click.option("--label-field", help="Where each item's label is (default: as labelled).")
@click.option("--label", "labels", multiple=True, help="A label a correction may be (repeat).")
@click.option("--instructions", default="", help="What reviewers should look for.")
@click.option("--lease-minutes", type=click.IntRange(1, 240), default=10, show_default=True)
@json_option
def create(dataset: str, **options: Any) -> None:
    """A review of DATASET[@VERSION] (the latest version by default)."""
    name, _, number = dataset.partition("@")
    if number and not number.isdigit():
        raise click.BadParameter(f"'{dataset}' is not NAME or NAME@VERSION", param_hint="DATASET")
    request = ReviewCreate.model_validate(
        {
            "dataset": name,
            "version": int(number) if number else None,
            "filter": {"split": options["split"], "where": _where(options["where"])},
            "label_field": options["label_field"],
            "labels": list(options["labels"]) or None,
            "instructions": options["instructions"],
            "lease_minutes": options["lease_minutes"],
        }
    )
    with open_home_store() as store:
        out = Reviews(store).create(request, local_actor())
    _show(out, options["as_json"])


def _where(pairs: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals:
            raise click.BadParameter(f"'{pair}' is not FIELD=VALUE", param_hint="--where")
        try:
            found[name] = json.loads(text)
        except ValueError:
            found[name] = text
    return found


@review.command("list")
@click.option("--status", type=click.Choice(["open", "finished"]))
@json_option
def list_reviews(status: str | None, as_json: bool) -> None:
    """Reviews and their progress, newest first."""
    with open_home_store() as store:
        found = Reviews(store).list_reviews(cast(ReviewStatus | None, status), 100)
    if as_json:
        print_json(found)
        return
    print_table(
        "Reviews",
        ["id", "dataset", "status", "decided", "accepted", "corrected", "rejected", "result"],
        [
            [
                r.id,
                f"{r.dataset}@{r.version}",
                r.status,
                f"{r.progress.decided}/{r.progress.items}",
                r.progress.by_decision.accept,
                r.progress.by_decision.correct,
                r.progress.by_decision.reject,
                r.result.dataset if r.result else None,
            ]
            for r in found
        ],
    )


@review.command("show")
@click.argument("review_id", type=click.IntRange(1))
@click.option("--items", "with_items", is_flag=True, help="Also list the decided items.")
@json_option
def show(review_id: int, with_items: bool, as_json: bool) -> None:
    """One review: progress by decision and by reviewer, and what finishing wrote."""
    with open_home_store() as store:
        reviews = Reviews(store)
        out = reviews.get(review_id)
        decided = reviews.items(review_id, limit=1000).data if with_items else []
    if as_json:
        items = {"items": [s.model_dump(mode="json") for s in decided]} if with_items else {}
        print_json({**out.model_dump(mode="json"), **items})
        return
    _show(out, False)
    if decided:
        print_table(
            "Items",
            ["item", "decision", "correction", "by", "at", "held by"],
            [
                [s.index, s.decision, s.correction, s.decided_by, s.decided_at, s.leased_by]
                for s in decided
            ],
        )


@review.command("next")
@click.argument("review_id", type=click.IntRange(1))
@json_option
def next_item(review_id: int, as_json: bool) -> None:
    """Take the next item (or the one you hold) and print it."""
    with open_home_store() as store:
        step = ReviewQueue(store).next(review_id, local_actor())
    _step(step, as_json)


@review.command("decide")
@click.argument("review_id", type=click.IntRange(1))
@click.argument("item_index", type=click.IntRange(0))
@click.argument("decision", type=click.Choice(["accept", "correct", "reject", "skip"]))
@click.option("--correction", help="The right answer (or label), with `correct`.")
@json_option
def decide(
    review_id: int, item_index: int, decision: str, correction: str | None, as_json: bool
) -> None:
    """Decide ITEM_INDEX of REVIEW_ID; `skip` hands it back to the queue."""
    body = {"decision": decision}
    if correction is not None:
        body["correction"] = correction
    choice = TypeAdapter(DecisionIn).validate_python(body)
    with open_home_store() as store:
        step = ReviewQueue(store).decide(review_id, item_index, choice, local_actor())
    _step(step, as_json)


@review.command("undo")
@click.argument("review_id", type=click.IntRange(1))
@json_option
def undo(review_id: int, as_json: bool) -> None:
    """Take back your latest decision or skip; the item is yours again."""
    with open_home_store() as store:
        step = ReviewQueue(store).undo(review_id, local_actor())
    _step(step, as_json)


@review.command("finish")
@click.argument("review_id", type=click.IntRange(1))
@click.option(
    "--undecided",
    type=click.Choice(["keep", "drop"]),
    help="Keep or drop undecided items (required when there are some).",
)
@click.option("--name", help="The dataset of the new version (default: the reviewed one).")
@json_option
def finish(review_id: int, undecided: str | None, name: str | None, as_json: bool) -> None:
    """Write the decisions as a new version of the dataset and close the review."""
    request = FinishRequest.model_validate({"undecided": undecided, "name": name})
    with open_home_store() as store:
        out = finish_review(store, review_id, request, local_actor())
    _show(out, as_json)


def _show(out: ReviewOut, as_json: bool) -> None:
    if as_json:
        print_json(out)
        return
    progress = out.progress
    click.echo(
        f"review {out.id}: {out.dataset}@{out.version}, {out.status}; "
        f"{progress.decided}/{progress.items} decided, {progress.leased} held now "
        f"(created {when(out.created_at)} by {out.created_by})"
    )
    rows = [[who, c.accept, c.correct, c.reject, c.skip] for who, c in progress.by_reviewer.items()]
    total = progress.by_decision
    rows.append(["all", total.accept, total.correct, total.reject, total.skip])
    print_table("Decisions", ["reviewer", "accepted", "corrected", "rejected", "skipped"], rows)
    if out.result is not None:
        result = out.result
        click.echo(
            f"new version {result.dataset}: {result.items} items ({result.rejected} rejected "
            f"left out, {result.undecided_items} undecided {KEPT[result.undecided]})"
        )


def _step(step: ReviewStep, as_json: bool) -> None:
    if as_json:
        print_json(step)
        return
    progress = step.progress
    click.echo(f"review {step.review}: {progress.decided}/{progress.items} decided")
    if step.item is None:
        click.echo(step.message)
        return
    _item(step.item)


def _item(item: ReviewItemOut) -> None:
    view = item.view
    state = item.decision or "undecided"
    held = f", yours until {when(item.lease_expires_at)}" if item.lease_expires_at else ""
    click.echo(f"item {item.index} ({state}{held})")
    question = view.question or json.dumps(view.messages, ensure_ascii=False)
    for label, text in (
        ("question", question),
        ("answer", view.answer),
        ("label", view.label),
        ("corrected", item.correction or view.corrected),
    ):
        if text:
            click.echo(f"{label}: {text}")
