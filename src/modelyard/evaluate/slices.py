"""Slices: every metric of a run broken down by an item attribute, each slice with its size
and a bootstrap confidence interval.

An attribute is a short field of the items (recorded with the run: ``item_attributes``), or
derived from the prompt the model was asked: ``language`` (``observe.language``) and
``length`` (terciles of its characters: short, medium, long). Pure computation over
stored answers, CPU-bound: callers run it on a worker thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.evaluate.metrics import MetricInputError, metric
from modelyard.evaluate.protocol import EvalItemOut
from modelyard.evaluate.tasks import Item, Task
from modelyard.lazy import lazy_module
from modelyard.observe import language

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: the server imports this module at start-up (issue 8)
    np = lazy_module("numpy")
stats = lazy_module("scipy.stats")

ATTRIBUTE_CHARS = 64  # longer strings are texts, not attributes: not recorded
MIN_INTERVAL_ITEMS = 10  # a smaller slice gets its value but no interval, and is never "worst"
RESAMPLES = 2_000
CONFIDENCE = 0.95
DERIVED = ("language", "length")
LENGTH_BUCKETS = ("short", "medium", "long")
MISSING = "(missing)"


def item_attributes(items: Sequence[Item], indices: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The fields of each item that can name a slice: numbers, booleans and strings of at
    most ``ATTRIBUTE_CHARS`` characters (texts and lists are left out)."""
    return {index: _short_fields(items[index]) for index in indices}


def _short_fields(item: Item) -> dict[str, Any]:
    return {
        name: value
        for name, value in item.items()
        if isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= ATTRIBUTE_CHARS)
    }


def language_of(text: str) -> str:
    """The language ``observe.language`` finds in a prompt (an ISO 639 code, ``und`` when it
    cannot tell, ``none`` for a prompt without letters)."""
    return language.language_of(text) or "none"


@dataclass(frozen=True)
class Labelled:
    """Each item's slice under one attribute, and how the labels were made."""

    attribute: str
    labels: list[str]
    edges: list[float] | None = None  # the length buckets' character bounds


def label_items(
    attribute: str, items: Sequence[EvalItemOut], attributes: Mapping[int, Mapping[str, Any]]
) -> Labelled:
    """The slice of every item under ``attribute``."""
    if attribute == "language":
        return Labelled(attribute, [language_of(i.question) for i in items])
    if attribute == "length":
        return _length_buckets(items)
    labels = []
    for item in items:
        value = attributes.get(item.item_index, {}).get(attribute)
        labels.append(MISSING if value is None else str(value))
    return Labelled(attribute, labels)


def _length_buckets(items: Sequence[EvalItemOut]) -> Labelled:
    lengths = np.array([len(i.question) for i in items], dtype=float)
    low, high = (float(q) for q in np.quantile(lengths, [1 / 3, 2 / 3]))
    labels = [
        LENGTH_BUCKETS[0] if n <= low else LENGTH_BUCKETS[1] if n <= high else LENGTH_BUCKETS[2]
        for n in lengths
    ]
    return Labelled("length", labels, [low, high])


def slice_table(task: Task, items: Sequence[EvalItemOut], labelled: Labelled) -> dict[str, Any]:
    """Per slice: its size and every metric with its interval; and per metric the worst
    slice of at least ``MIN_INTERVAL_ITEMS`` items."""
    groups: dict[str, list[EvalItemOut]] = defaultdict(list)
    for item, label in zip(items, labelled.labels, strict=True):
        groups[label].append(item)
    slices = [
        {"value": value, "n": len(group), "metrics": slice_metrics(task, group)}
        for value, group in sorted(groups.items(), key=_slice_order)
    ]
    return {
        "attribute": labelled.attribute,
        "edges": labelled.edges,
        "slices": slices,
        "worst": worst_slices(task, slices),
    }


def _slice_order(entry: tuple[str, object]) -> tuple[int, str]:
    """Length buckets from short to long, other slices by name."""
    name = entry[0]
    return (LENGTH_BUCKETS.index(name) if name in LENGTH_BUCKETS else len(LENGTH_BUCKETS), name)


def slice_metrics(task: Task, group: Sequence[EvalItemOut]) -> dict[str, dict[str, Any]]:
    predictions = [i.extracted for i in group]
    references = [i.reference for i in group]
    out: dict[str, dict[str, Any]] = {}
    for spec in task.metrics:
        measure = metric(spec.name, **spec.options)
        try:
            result = measure.compute(predictions, references)
        except MetricInputError as error:
            out[measure.name] = {"value": None, "note": str(error)}
            continue
        out[result.name] = {"value": result.value, **interval(result.per_item)}
    return out


def interval(per_item: Sequence[float] | None) -> dict[str, Any]:
    """The percentile bootstrap interval of the mean item score, or why there is none."""
    if per_item is None:
        return {"ci_low": None, "ci_high": None, "note": "no item scores: no interval"}
    if len(per_item) < MIN_INTERVAL_ITEMS:
        note = f"too few items for an interval (n < {MIN_INTERVAL_ITEMS})"
        return {"ci_low": None, "ci_high": None, "note": note}
    scores = np.asarray(per_item, dtype=float)
    if np.all(scores == scores[0]):  # every resample is the same: the interval is the point
        return {"ci_low": float(scores[0]), "ci_high": float(scores[0]), "note": None}
    result = stats.bootstrap(
        (scores,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    low, high = result.confidence_interval
    return {"ci_low": float(low), "ci_high": float(high), "note": None}


def worst_slices(task: Task, slices: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per metric, the slice (of at least ``MIN_INTERVAL_ITEMS`` items) where it is worst;
    None when no slice is that large."""
    worst: dict[str, Any] = {}
    for spec in task.metrics:
        measure = metric(spec.name, **spec.options)
        higher = (
            measure.higher_is_better if spec.higher_is_better is None else spec.higher_is_better
        )
        sized = [
            (s["metrics"][measure.name]["value"], s["value"], s["n"])
            for s in slices
            if s["n"] >= MIN_INTERVAL_ITEMS and s["metrics"][measure.name]["value"] is not None
        ]
        if not sized:
            worst[measure.name] = None
            continue
        value, name, n = min(sized) if higher else max(sized)
        worst[measure.name] = {"slice": name, "value": value, "n": n}
    return worst
