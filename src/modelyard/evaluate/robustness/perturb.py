"""Seeded text perturbations. Each function takes the text and a ``random.Random`` (the
caller seeds one per item and field, so a run is the same whatever order its items are
asked in) and returns the changed text; none of them ever touches a reference.

Unicode lookalikes come from the Unicode consortium's confusables table as the
``confusable-homoglyphs`` package ships it; simplified/traditional Chinese from OpenCC's
dictionaries as ``opencc-python-reimplemented`` ships them. Both load once per run
(``TextPerturber``), on a worker thread."""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Callable, Mapping
from importlib import resources
from types import MappingProxyType

from modelyard.evaluate.robustness.spec import Perturbation

# A QWERTY keyboard's rows: a typo hits a key next to the intended one.
_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060")  # ZWSP, ZWNJ, ZWJ, word joiner
_MARKS = ",.;:!?"
_CJK_MARKS = "，。、；！？"
# Homoglyphs a spoofer uses: letters of these scripts that look like Latin ones.
_SPOOF_SCRIPTS = ("CYRILLIC ", "GREEK ")


def _neighbours() -> Mapping[str, str]:
    near: dict[str, str] = {}
    for r, row in enumerate(_ROWS):
        for c, key in enumerate(row):
            keys = [row[i] for i in (c - 1, c + 1) if 0 <= i < len(row)]
            for other in (r - 1, r + 1):
                if 0 <= other < len(_ROWS):
                    keys += [_ROWS[other][i] for i in (c - 1, c) if 0 <= i < len(_ROWS[other])]
            near[key] = "".join(keys)
    return MappingProxyType(near)


KEYBOARD_NEIGHBOURS = _neighbours()


def typos(text: str, rng: random.Random, rate: float) -> str:
    """Each ASCII letter or digit, with probability ``rate``: a neighbouring key instead,
    dropped, swapped with the next character, or doubled (Chinese has no keyboard typos
    here and is left alone)."""
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        char = chars[i]
        lower = char.lower()
        if lower not in KEYBOARD_NEIGHBOURS or rng.random() >= rate:
            out.append(char)
            i += 1
            continue
        action = rng.choice(("neighbour", "drop", "swap", "double"))
        if action == "neighbour":
            key = rng.choice(KEYBOARD_NEIGHBOURS[lower])
            out.append(key.upper() if char.isupper() else key)
        elif action == "swap" and i + 1 < len(chars):
            out += [chars[i + 1], char]
            i += 1
        elif action == "double":
            out += [char, char]
        i += 1  # "drop" appends nothing
    return "".join(out)


def casing(text: str, rng: random.Random, rate: float, mode: str) -> str:
    """Upper, lower or title case; ``random`` switches each letter's case with ``rate``."""
    if mode == "upper":
        return text.upper()
    if mode == "lower":
        return text.lower()
    if mode == "title":
        return text.title()
    return "".join(c.swapcase() if c.isalpha() and rng.random() < rate else c for c in text)


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


def punctuation(text: str, rng: random.Random, rate: float, mode: str) -> str:
    """``remove``: every punctuation character (Unicode category P*) goes; ``add``: after a
    word, or a Chinese character, a mark with probability ``rate``."""
    if mode == "remove":
        return "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    out: list[str] = []
    for i, char in enumerate(text):
        out.append(char)
        following = text[i + 1] if i + 1 < len(text) else " "
        word_end = char.isalnum() and not _is_cjk(char) and following.isspace()
        if (word_end or _is_cjk(char)) and rng.random() < rate:
            out.append(rng.choice(_CJK_MARKS if _is_cjk(char) else _MARKS))
    return "".join(out)


def whitespace(text: str, rng: random.Random, rate: float) -> str:
    """Each space, with probability ``rate``: doubled, a tab, a line break, or gone; and the
    text padded with spaces and a line break at its ends."""
    out = [
        rng.choice(("  ", "\t", "\n", "")) if char == " " and rng.random() < rate else char
        for char in text
    ]
    return "  " + "".join(out) + " \n"


def zero_width(text: str, rng: random.Random, rate: float) -> str:
    """An invisible character (zero-width space, joiner, non-joiner, word joiner) after
    each character with probability ``rate``."""
    return "".join(c + rng.choice(_ZERO_WIDTH) if rng.random() < rate else c for c in text)


def full_width(text: str, rng: random.Random, rate: float) -> str:
    """Each printable ASCII character, with probability ``rate``, as its full-width form
    (``A`` -> U+FF21, a space -> the ideographic space U+3000)."""

    def wide(char: str) -> str:
        if char == " ":
            return "\u3000"
        return chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char

    return "".join(wide(c) if rng.random() < rate else c for c in text)


def homoglyph_table() -> Mapping[str, tuple[str, ...]]:
    """Latin letters and digits -> their Cyrillic and Greek lookalikes (Unicode's
    confusables, as the ``confusable-homoglyphs`` package ships them)."""
    source = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    data = json.loads(source.read_text(encoding="utf-8"))
    table: dict[str, tuple[str, ...]] = {}
    for char in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        looks = tuple(
            entry["c"]
            for entry in data.get(char, ())
            if len(entry["c"]) == 1 and entry["n"].startswith(_SPOOF_SCRIPTS)
        )
        if looks:
            table[char] = looks
    return MappingProxyType(table)


def homoglyphs(
    text: str, rng: random.Random, rate: float, table: Mapping[str, tuple[str, ...]]
) -> str:
    """Each letter that has a Cyrillic or Greek lookalike, with probability ``rate``, as one."""
    return "".join(rng.choice(table[c]) if c in table and rng.random() < rate else c for c in text)


TextChange = Callable[[str, random.Random], str]


class TextPerturber:
    """One perturbation's text function with its tables loaded (OpenCC's dictionaries, the
    confusables table): build it on a worker thread, once per run."""

    def __init__(self, perturbation: Perturbation) -> None:
        if perturbation.kind == "paraphrase":
            raise ValueError("a paraphrase is asked of a route, not computed (see paraphrase.py)")
        self.perturbation = perturbation
        self._change = self._build(perturbation)

    def _build(self, p: Perturbation) -> TextChange:
        rate, mode = p.rate, p.chosen_mode or ""
        if p.kind == "typos":
            return lambda text, rng: typos(text, rng, rate)
        if p.kind == "casing":
            return lambda text, rng: casing(text, rng, rate, mode)
        if p.kind == "punctuation":
            return lambda text, rng: punctuation(text, rng, rate, mode)
        if p.kind == "whitespace":
            return lambda text, rng: whitespace(text, rng, rate)
        if p.kind == "opencc":
            from opencc import OpenCC  # its dictionaries load here, not at import

            converter = OpenCC(mode)
            return lambda text, rng: str(converter.convert(text))
        if mode == "zero_width":
            return lambda text, rng: zero_width(text, rng, rate)
        if mode == "full_width":
            return lambda text, rng: full_width(text, rng, rate)
        table = homoglyph_table()
        return lambda text, rng: homoglyphs(text, rng, rate, table)

    def text(self, text: str, index: int, field: str) -> str:
        """``text`` (item ``index``'s ``field``) perturbed: the same inputs, the same result."""
        p = self.perturbation
        return self._change(text, random.Random(f"{p.seed}:{index}:{field}:{p.label}"))
