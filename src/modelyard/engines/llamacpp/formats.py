"""GBNF rules for what the converter cannot express exactly: string formats and numeric bounds.

Each rule produces only values a JSON Schema validator accepts for the format (a date whose
day exists in its month, a URI with a scheme and host, ...): a subset of the valid values,
short enough for a model to write.
"""

from __future__ import annotations

import math
from typing import Any

INTEGER_RANGE_LIMIT = 10**15  # bounds beyond this many are refused (the grammar's digits)
DIGITS = 16  # longest integer part a reply may have

_D = "[0-9]"
_DATE = (
    '[12] [0-9] [0-9] [0-9] "-" ( ("0" [13578] | "1" [02]) "-" ("0" [1-9] | [12] [0-9] | "3" '
    '[01]) | ("0" [469] | "11") "-" ("0" [1-9] | [12] [0-9] | "30") | "02-" ("0" [1-9] | "1" '
    '[0-9] | "2" [0-8]) )'
)
_TIME = (
    '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
    '("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])'
)
_LABEL = "[a-z0-9] ([a-z0-9-]{0,20} [a-z0-9])?"
_HOST = f'{_LABEL} ("." {_LABEL}){{0,4}}'
_OCTET = '("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9])'
_HEX = "[0-9a-f]"
_URI = f'[a-z] [a-z0-9+.-]{{0,9}} "://" {_HOST} ("/" [a-zA-Z0-9._~-]{{0,24}}){{0,6}}'

# Formats JSON Schema validators assert, as the text between the quotes.
_FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f'{_DATE} "T" {_TIME}',
    "uuid": ' "-" '.join(f"{_HEX}{{{n}}}" for n in (8, 4, 4, 4, 12)),
    "email": f'[a-zA-Z0-9_+-]{{1,24}} ("." [a-zA-Z0-9_+-]{{1,24}}){{0,3}} "@" {_HOST} "." '
    "[a-z]{2,6}",
    "hostname": _HOST,
    "ipv4": f'{_OCTET} "." {_OCTET} "." {_OCTET} "." {_OCTET}',
    "uri": _URI,
    "uri-reference": _URI,
    "iri": _URI,
    "iri-reference": _URI,
    "duration": '"P" ([0-9]{1,4} [YMWD] | "T" [0-9]{1,4} [HMS])',
    "json-pointer": '("/" [a-zA-Z0-9_]{0,24}){0,8}',
    "regex": "[a-zA-Z0-9_ ]{0,40}",
}
# Formats the JSON Schema spec defines, whose assertion a grammar here cannot keep.
_STANDARD = frozenset(
    {"ipv6", "idn-email", "idn-hostname", "uri-template", "relative-json-pointer"}
)


class UnsupportedBound(ValueError):
    """A keyword (``args[0]``) the number grammar cannot keep, and why (``args[1]``)."""


def format_rule(name: Any) -> str | None:
    """A GBNF rule for a JSON string of format ``name``; a plain string for formats only
    OpenAPI or applications define (validators ignore those); None: refused."""
    if name in _FORMATS:
        return f'"\\"" {_FORMATS[name]} "\\"" space'
    if name in _STANDARD:
        return None
    return '"\\"" char* "\\"" space'


def number_rule(node: dict[str, Any], integer: bool) -> str:
    """A GBNF rule for a JSON integer or number within the node's bounds."""
    low, high = _bounds(node)
    if integer:
        return f"({_integers(_ceil(low, node), _floor(high, node))}) space"
    return f"({_decimals(low, high, node)}) space"


def _bounds(node: dict[str, Any]) -> tuple[float | None, float | None]:
    low, high = node.get("minimum"), node.get("maximum")
    # Draft 4 spells exclusive bounds as booleans next to minimum/maximum.
    ex_low, ex_high = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        low = ex_low if low is None else max(low, ex_low)
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        high = ex_high if high is None else min(high, ex_high)
    for key, value in (("minimum", low), ("maximum", high)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UnsupportedBound(key, f"{key} must be a number")
        if value is not None and abs(value) >= INTEGER_RANGE_LIMIT:
            raise UnsupportedBound(key, f"{key} {value} is too large")
    return low, high


def _exclusive(node: dict[str, Any], side: str, value: float) -> bool:
    flag = node.get(f"exclusive{side}")
    return flag is True or (not isinstance(flag, bool) and flag == value)


def _ceil(low: float | None, node: dict[str, Any]) -> int | None:
    if low is None:
        return None
    step = 1 if float(low).is_integer() and _exclusive(node, "Minimum", low) else 0
    return math.ceil(low) + step


def _floor(high: float | None, node: dict[str, Any]) -> int | None:
    if high is None:
        return None
    step = 1 if float(high).is_integer() and _exclusive(node, "Maximum", high) else 0
    return math.floor(high) - step


def _integers(low: int | None, high: int | None) -> str:
    if low is not None and high is not None and low > high:
        raise UnsupportedBound("minimum", f"no integer lies in [{low}, {high}]")
    any_digits = f"[1-9] {_D}{{0,{DIGITS - 1}}}"
    if low is None and high is None:
        return f'"-"? ("0" | {any_digits})'
    if low is None:
        assert high is not None
        if high >= 0:
            return f'"-" {any_digits} | {_range(0, high)}'
        return f'"-" ({_at_least(-high)})'
    if high is None:
        if low >= 0:
            return _at_least(low)
        return f'"-" ({_range(1, -low)}) | "0" | {any_digits}'
    if low >= 0:
        return _range(low, high)
    if high < 0:
        return f'"-" ({_range(-high, -low)})'
    return f'"-" ({_range(1, -low)}) | {_range(0, high)}'


def _at_least(low: int) -> str:
    """Integers >= ``low`` >= 0: the rest of its digit count, then any longer ones."""
    width = len(str(low))
    return f"{_range(low, 10**width - 1)} | [1-9] {_D}{{{width},{DIGITS - 1}}}"


def _range(low: int, high: int) -> str:
    """Decimal integers in [low, high] (both >= 0), without leading zeros."""
    parts = []
    while low <= high:
        width_end = min(high, 10 ** len(str(low)) - 1)
        parts.append(_same_width(str(low), str(width_end)))
        low = width_end + 1
    return " | ".join(parts)


def _same_width(low: str, high: str) -> str:
    """Digit strings of one width between ``low`` and ``high`` (a regex range, as GBNF)."""
    if len(low) == 1:
        return f"[{low}-{high}]"
    if low[0] == high[0]:
        return f'"{low[0]}" ({_same_width(low[1:], high[1:])})'
    rest = len(low) - 1
    parts = [f'"{low[0]}" ({_same_width(low[1:], "9" * rest)})']
    if int(high[0]) - int(low[0]) > 1:
        parts.append(f"[{int(low[0]) + 1}-{int(high[0]) - 1}] {_D}{{{rest}}}")
    parts.append(f'"{high[0]}" ({_same_width("0" * rest, high[1:])})')
    return " | ".join(parts)


def _decimals(low: float | None, high: float | None, node: dict[str, Any]) -> str:
    fraction = f'("." {_D}{{1,15}})?'
    if low is None and high is None:
        return f'"-"? ("0" | [1-9] {_D}{{0,15}}) {fraction}'
    if high is None and low == 0:
        if _exclusive(node, "Minimum", 0):  # positive: a zero integer part needs a digit
            return f'[1-9] {_D}{{0,15}} {fraction} | "0." {_D}{{0,14}} [1-9]'
        return f'("0" | [1-9] {_D}{{0,15}}) {fraction}'
    inclusive = not (
        _exclusive(node, "Minimum", low or 0) or _exclusive(node, "Maximum", high or 0)
    )
    if (
        low is not None
        and high is not None
        and inclusive
        and 0 <= low < high
        and float(low).is_integer()
        and float(high).is_integer()
    ):
        whole = _range(int(low), int(high) - 1)
        return f'({whole}) {fraction} | "{int(high)}" (".0")?'
    raise UnsupportedBound("minimum", "these bounds of a number are not supported")
