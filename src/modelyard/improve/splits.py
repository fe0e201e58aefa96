"""Stratified train/dev/test splits: each stratum (label, language or both) is shuffled with
the seed and cut by the shares, so every split keeps the batch's balance."""

from __future__ import annotations

import math
import random
from collections import defaultdict

from modelyard.improve.protocol import SPLITS, Split, Splits


def stratum(splits: Splits, label: str | None, language: str) -> str:
    """The key an item is stratified by."""
    parts = {
        "label_language": (label or "", language),
        "label": (label or "",),
        "language": (language,),
        "none": (),
    }[splits.by]
    return "\x1f".join(parts)


def shares(splits: Splits) -> dict[Split, float]:
    total = splits.train + splits.dev + splits.test
    return {name: getattr(splits, name) / total for name in SPLITS}


def cut(size: int, wanted: dict[Split, float]) -> dict[Split, int]:
    """How many of ``size`` items each split gets: floors, then the largest remainders
    (ties to the earlier split, so a lone item goes to train)."""
    exact = {name: size * share for name, share in wanted.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    left = size - sum(counts.values())
    for name in sorted(SPLITS, key=lambda n: (counts[n] - exact[n], SPLITS.index(n)))[:left]:
        counts[name] += 1
    return counts


def assign(strata: list[str], splits: Splits) -> list[Split]:
    """The split of each item, by its stratum."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(strata):
        groups[key].append(index)
    wanted = shares(splits)
    out: list[Split] = ["train"] * len(strata)
    for key in sorted(groups):
        members = groups[key]
        random.Random(f"{splits.seed}:{key}").shuffle(members)
        start = 0
        for name, count in cut(len(members), wanted).items():
            for index in members[start : start + count]:
                out[index] = name
            start += count
    return out
