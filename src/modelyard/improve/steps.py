"""What each curation step says it did and why (the report's ``what``), and an item's
class."""

from __future__ import annotations

from typing import Any

from modelyard.improve.cleaning import REASONS, WHY
from modelyard.improve.outliers import FEATURES
from modelyard.improve.protocol import CurateRequest

Item = dict[str, Any]
NO_LABEL = "(none)"


def label_of(item: Item, spec: str | None) -> str | None:
    """The item's class: its answer (``output``) or the last value of the named feedback
    (``feedback:NAME``); None when no label is asked for, ``(none)`` when the item has none."""
    if spec is None:
        return None
    if spec == "output":
        value = item.get("output")
    else:
        name = spec.removeprefix("feedback:")
        given = [f.get("value") for f in item.get("feedback") or [] if f.get("name") == name]
        value = given[-1] if given else None
    text = "" if value is None else str(value).strip()
    return text or NO_LABEL


def read(request: CurateRequest, inputs: dict[str, Any]) -> str:
    parts = []
    if inputs.get("log") is not None:
        log = inputs["log"]
        route = f" of route {log['route']}" if log.get("route") else ""
        judged = ""
        if log.get("feedback") or log.get("negative_only"):
            kind = "negative " if log.get("negative_only") else ""
            judged = f" with {kind}{log.get('feedback') or 'any'} feedback"
        parts.append(f"logged requests{route}{judged} since {log['since']} (newest first)")
    parts += [f"the items of {d['name']}@{d['version']}" for d in inputs.get("datasets", [])]
    return (
        f"Read {' and '.join(parts) or 'nothing'}, in batches. A row whose content is "
        f"missing ({WHY['no_content']}) or cannot be opened is dropped here."
    )


def clean(request: CurateRequest) -> str:
    rules = request.cleaning
    on = [f"{r} ({WHY[r]})" for r in REASONS if getattr(rules, r)]
    off = [r for r in REASONS if not getattr(rules, r)]
    return f"Dropped rows that are not material for a dataset: {'; '.join(on) or 'none'}." + (
        f" Rules turned off: {', '.join(off)}." if off else ""
    )


def pii(request: CurateRequest, actor: str) -> str:
    if request.scrub_pii:
        return (
            "Replaced personal data with placeholders such as <EMAIL_1> using the guard's PII "
            "detector, in the question, messages, answer and feedback comments; examples "
            "everywhere in this report are scrubbed too."
        )
    return f"Not scrubbed: {actor} opted out; this is recorded in the version's provenance."


def language(library: str) -> str:
    return (
        f"Identified each item's language with {library} (not the request log's writing "
        "system); `und` is text without letters."
    )


def exact(request: CurateRequest) -> str:
    if not request.dedup.exact:
        return "Exact duplicates were not looked for (turned off)."
    return (
        "Dropped items whose input, normalized (NFKC, case-folded, single spaces), equals a "
        "kept item's; the kept item lists their request ids."
    )


def near(request: CurateRequest) -> str:
    dedup = request.dedup
    if not dedup.near:
        return "Near duplicates were not looked for (turned off)."
    return (
        f"Dropped items whose input shares at least {dedup.threshold:.2f} of its character "
        f"5-grams (Jaccard similarity) with a kept item's, found with MinHash LSH "
        f"({dedup.num_perm} permutations) and checked against the threshold; the kept item "
        "lists their request ids."
    )


def outliers(request: CurateRequest) -> str:
    options = request.outliers
    if options.action == "off":
        return "Outliers were not looked for (turned off)."
    threshold = (
        "a score below the far-out fence of the scores (first quartile - 3 IQR)"
        if options.contamination == "auto"
        else f"the {options.contamination:.1%} lowest scores"
    )
    done = "dropped" if options.action == "drop" else "flagged (`outlier`: true) and kept"
    return (
        f"Scored every kept item with an isolation forest over {', '.join(FEATURES)} "
        f"(seed {options.seed}); items with {threshold} are {done}. Each item carries its "
        "`outlier_score` (lower is more unusual)."
    )


def split(request: CurateRequest) -> str:
    splits = request.splits
    total = splits.train + splits.dev + splits.test
    by = {"label_language": "label and language", "none": "nothing"}.get(splits.by, splits.by)
    return (
        f"Split into train/dev/test with shares {splits.train / total:.2f}/"
        f"{splits.dev / total:.2f}/{splits.test / total:.2f}, stratified by {by} "
        f"(seed {splits.seed}); each split keeps the batch's balance."
    )
