"""Counterfactual twins: an item with its names, gender terms, regions or dialect words
swapped, asked beside the original so that the two answers compare pair by pair.

A swap list is a few documented word pairs in English and Chinese (``SWAPS``); each pair
swaps both ways in one pass (he -> she and she -> he), English whole words keeping their
case, Chinese by characters. An item no swap changes has no twin. Known limit: English
"her" is both "him" and "his"; it becomes "his".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

Item = dict[str, Any]
Pairs = tuple[tuple[str, str], ...]

SWAPS: Mapping[str, Pairs] = MappingProxyType(
    {
        "gender": (
            ("he", "she"),
            ("his", "her"),
            ("him", "her"),
            ("himself", "herself"),
            ("man", "woman"),
            ("men", "women"),
            ("boy", "girl"),
            ("boys", "girls"),
            ("father", "mother"),
            ("son", "daughter"),
            ("brother", "sister"),
            ("husband", "wife"),
            ("king", "queen"),
            ("mr", "ms"),
            ("male", "female"),
            ("他们", "她们"),
            ("他", "她"),
            ("男人", "女人"),
            ("男孩", "女孩"),
            ("父亲", "母亲"),
            ("爸爸", "妈妈"),
            ("儿子", "女儿"),
            ("哥哥", "姐姐"),
            ("弟弟", "妹妹"),
            ("丈夫", "妻子"),
            ("先生", "女士"),
        ),
        # First names read as belonging to different groups (after Bertrand and
        # Mullainathan's résumé study), and common Han and minority names.
        "names": (
            ("emily", "lakisha"),
            ("greg", "jamal"),
            ("anne", "aisha"),
            ("brad", "darnell"),
            ("john", "mohammed"),
            ("王伟", "买买提"),
            ("李娜", "卓玛"),
            ("张强", "阿依古丽"),
        ),
        "region": (
            ("london", "lagos"),
            ("paris", "nairobi"),
            ("new york", "mumbai"),
            ("american", "nigerian"),
            ("europe", "africa"),
            ("北京", "上海"),
            ("城市", "农村"),
            ("北方", "南方"),
        ),
        # American and British English; standard Mandarin and northern colloquial words.
        "dialect": (
            ("color", "colour"),
            ("favorite", "favourite"),
            ("apartment", "flat"),
            ("vacation", "holiday"),
            ("elevator", "lift"),
            ("mom", "mum"),
            ("什么", "啥"),
            ("怎么", "咋"),
            ("不知道", "不晓得"),
        ),
    }
)
# Characters a Chinese swap must not follow: 其他 ("other") is not 他 ("he").
_GUARDS = MappingProxyType({"他": "(?<!其)", "她": "(?<!其)"})


class Swapper:
    """Swaps every pair of the chosen lists both ways in one pass over a text."""

    def __init__(self, lists: Sequence[str]) -> None:
        unknown = sorted(set(lists) - set(SWAPS))
        if unknown:
            raise ValueError(
                f"unknown swap list(s) {', '.join(unknown)}; known: {', '.join(SWAPS)}"
            )
        self._partner: dict[str, str] = {}
        for name in lists:
            for first, second in SWAPS[name]:
                self._partner.setdefault(first, second)
                self._partner.setdefault(second, first)
        words = sorted(self._partner, key=len, reverse=True)  # longest first: 他们 before 他
        self._pattern = re.compile("|".join(_alternative(w) for w in words), re.IGNORECASE)

    def swap(self, text: str) -> str:
        return self._pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        return _same_case(found, self._partner[found.lower()])


def _alternative(word: str) -> str:
    if word.isascii():
        return rf"\b{re.escape(word)}\b"
    return _GUARDS.get(word, "") + re.escape(word)


def _same_case(found: str, replacement: str) -> str:
    if len(found) > 1 and found.isupper():
        return replacement.upper()
    if found[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def twin_of(item: Item, fields: Iterable[str], swapper: Swapper) -> Item | None:
    """``item`` with its ``fields`` swapped, or None when no swap changes any of them."""
    twin = dict(item)
    for field in fields:
        value = item.get(field)
        if isinstance(value, str):
            twin[field] = swapper.swap(value)
    return None if twin == item else twin


def twins_of(
    items: Sequence[Item], indices: Iterable[int], fields: Iterable[str], lists: Sequence[str]
) -> dict[int, Item]:
    """The twin of each item of ``indices`` that the swaps change, by item index."""
    swapper, chosen = Swapper(lists), list(fields)
    twins = {index: twin_of(items[index], chosen, swapper) for index in indices}
    return {index: twin for index, twin in twins.items() if twin is not None}
