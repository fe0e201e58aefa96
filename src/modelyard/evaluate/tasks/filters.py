"""Answer extraction: turning a model's reply into the answer a metric compares."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

CJK_PUNCTUATION = "，。！？；：、“”\u2018\u2019（）《》【】—…·"
_NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)")
# A choice letter standing alone: "B", "(B)", "B.", "答案是B", "选 B"
_CHOICE = re.compile(r"(?<![A-Za-z])([A-H])(?![A-Za-z])")


def _normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation + CJK_PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _first_number(text: str) -> str:
    match = _NUMBER.search(text)
    return match.group(0).replace(",", "") if match else ""


def _choice_letter(text: str) -> str:
    match = _CHOICE.search(text.upper() if len(text.strip()) == 1 else text)
    return match.group(1) if match else ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


SIMPLE: MappingProxyType[str, Callable[[str], str]] = MappingProxyType(
    {
        "strip": str.strip,
        "lower": str.lower,
        "normalize": _normalize,
        "first_line": _first_line,
        "first_number": _first_number,
        "choice_letter": _choice_letter,
    }
)


def compile_filters(filters: Sequence[str | dict[str, Any]]) -> list[Callable[[str], str]]:
    """Check and compile a task's filters (ValueError naming the bad one)."""
    compiled: list[Callable[[str], str]] = []
    for spec in filters:
        if isinstance(spec, str):
            if spec not in SIMPLE:
                raise ValueError(
                    f"unknown filter '{spec}'; known: {', '.join(SIMPLE)}, {{regex: PATTERN}}"
                )
            compiled.append(SIMPLE[spec])
        elif set(spec) == {"regex"} and isinstance(spec["regex"], str):
            compiled.append(_regex(spec["regex"]))
        else:
            raise ValueError(f"a filter is a name or {{regex: PATTERN}}, not {spec!r}")
    return compiled


def _regex(pattern: str) -> Callable[[str], str]:
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"filter regex {pattern!r} does not compile: {error}") from error

    def extract(text: str) -> str:
        """The first group of the first match (or the whole match); '' without a match."""
        match = compiled.search(text)
        if match is None:
            return ""
        return match.group(1) if compiled.groups else match.group(0)

    return extract


def apply_filters(text: str, filters: Sequence[Callable[[str], str]]) -> str:
    for extract in filters:
        text = extract(text)
    return text
