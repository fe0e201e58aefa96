"""Payment card schemes by IIN (the leading digits) and length, after the card networks'
published ranges; the longest matching prefix decides, so a co-branded range inside a
broader one (Verve's 650002-650027 inside Discover's 65) names its own scheme."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# Schemes whose cards are Chinese bank cards (``BANK_CARD``); every other is ``CREDIT_CARD``.
BANK_CARD_SCHEMES = frozenset({"unionpay", "china_domestic"})


@dataclass(frozen=True)
class Scheme:
    name: str
    lengths: frozenset[int]
    prefixes: tuple[str, ...]


def _span(first: int, last: int) -> tuple[str, ...]:
    return tuple(str(p) for p in range(first, last + 1))


def _lengths(first: int, last: int) -> frozenset[int]:
    return frozenset(range(first, last + 1))


SCHEMES: tuple[Scheme, ...] = (
    Scheme("visa", frozenset({13, 16, 19}), ("4",)),
    Scheme("mastercard", frozenset({16}), _span(51, 55) + _span(2221, 2720)),
    Scheme("amex", frozenset({15}), ("34", "37")),
    Scheme("discover", _lengths(16, 19), ("6011", *_span(644, 649), "65")),
    Scheme("diners", _lengths(14, 19), (*_span(300, 305), "3095", "36", "38", "39")),
    Scheme("jcb", _lengths(16, 19), _span(3528, 3589)),
    Scheme(
        "maestro",
        _lengths(12, 19),
        ("50", "56", "57", "58", "5018", "5020", "5038", "5893", "6304", "6759", "67"),
    ),
    Scheme("unionpay", _lengths(16, 19), ("62", *_span(8100, 8171))),
    Scheme("mir", _lengths(16, 19), _span(2200, 2204)),
    Scheme("rupay", frozenset({16}), ("60", "508", "6521", "6522")),
    Scheme(
        "verve",
        frozenset({16, 18, 19}),
        _span(506099, 506198) + _span(507865, 507964) + _span(650002, 650027),
    ),
    Scheme("dankort", frozenset({16}), ("5019",)),
    Scheme("interpayment", _lengths(16, 19), ("636",)),
    Scheme("instapayment", frozenset({16}), _span(637, 639)),
    Scheme("borica", frozenset({16}), ("2205",)),
    Scheme("troy", frozenset({16}), ("9792",)),
    Scheme("humo", frozenset({16}), ("9860",)),
    Scheme("uzcard", frozenset({16}), ("8600", "5614")),
    Scheme("china_domestic", _lengths(16, 19), ("9",)),  # older domestic cards before UnionPay
)


def _index(schemes: tuple[Scheme, ...]) -> Mapping[str, tuple[Scheme, ...]]:
    index: dict[str, tuple[Scheme, ...]] = {}
    for scheme in schemes:
        for prefix in scheme.prefixes:
            index[prefix] = (*index.get(prefix, ()), scheme)
    return MappingProxyType(index)


_BY_PREFIX = _index(SCHEMES)
_LONGEST_PREFIX = max(len(p) for p in _BY_PREFIX)


def scheme_of(digits: str) -> str | None:
    """The scheme whose longest IIN prefix starts ``digits`` and that issues its length."""
    for width in range(min(_LONGEST_PREFIX, len(digits)), 0, -1):
        for scheme in _BY_PREFIX.get(digits[:width], ()):
            if len(digits) in scheme.lengths:
                return scheme.name
    return None
