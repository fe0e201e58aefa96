"""The language of a prompt, for the request log's ``language`` column, drift reports and
slices: Google's Compact Language Detector 2 (``pycld2``: about 80 languages with the model
compiled into the library, no numpy, microseconds per prompt), on the first
``LANGUAGE_SAMPLE`` characters.

Codes are ISO 639-1 (``en``, ``zh``, ``fr``; ISO 639-2/3 for the few languages without one,
such as ``ceb``), ``und`` for text with letters in no language CLD2 can tell (``hi``,
``ok``), and None for text without letters. When CLD2 is unsure of a short text, a script
that one language writes alone still names it (Han ``zh``, kana ``ja``, hangul ``ko``, Thai
``th``, Hebrew ``he``).

Rows logged before language identification hold the writing system instead
(``script_of``: ``latin``, ``cyrillic``, ``zh``, ``ja``, …); ``comparable`` folds language
codes to those scripts when a comparison meets such a value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import pycld2

LANGUAGE_SAMPLE = 1000  # characters: CLD2's cost grows with the text, its answer barely
UNDETERMINED = "und"
# CLD2's codes that are not ISO 639-1: old Hebrew and Javanese codes, Traditional Chinese,
# Montenegrin Serbian.
_RENAMED = MappingProxyType({"iw": "he", "jw": "jv", "zh-Hant": "zh", "sr-ME": "sr"})
# What CLD2 refuses as invalid UTF-8: C0 and C1 controls but tab and newlines, and Unicode's
# noncharacters (U+FDD0..U+FDEF, and the last two code points of every plane).
_REFUSED = re.compile(
    "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\ufdd0-\\ufdef"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)
_KANA = re.compile("[\u3040-\u30ff]")  # every Japanese sentence has some
# Scripts that one language writes alone: they name it when CLD2 is unsure.
_SCRIPT_LANGUAGE = MappingProxyType(
    {"zh": "zh", "ja": "ja", "ko": "ko", "thai": "th", "hebrew": "he"}
)

ASCII_LETTER = re.compile("[A-Za-z]")
# (first, last code point, script)
RANGES = (
    (0x3040, 0x30FF, "ja"),  # hiragana, katakana
    (0xAC00, 0xD7AF, "ko"),  # hangul syllables
    (0x4E00, 0x9FFF, "zh"),  # CJK unified ideographs
    (0x3400, 0x4DBF, "zh"),
    (0x0400, 0x04FF, "cyrillic"),
    (0x0600, 0x06FF, "arabic"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0900, 0x097F, "devanagari"),
    (0x0E00, 0x0E7F, "thai"),
)
# What the request log held before languages were identified (besides zh, ja and ko).
LEGACY_SCRIPTS = frozenset({"latin", "cyrillic", "arabic", "hebrew", "devanagari", "thai", "other"})
# The script of each language not written in the Latin alphabet, by ``script_of``'s names.
_LANGUAGE_SCRIPT: Mapping[str, str] = MappingProxyType(
    {
        "zh": "zh",
        "ja": "ja",
        "ko": "ko",
        "th": "thai",
        **dict.fromkeys(
            ("ru", "uk", "bg", "be", "mk", "sr", "kk", "ky", "mn", "tg", "tt", "ba", "os"),
            "cyrillic",
        ),
        **dict.fromkeys(("ar", "fa", "ur", "ps", "sd", "ug", "ks"), "arabic"),
        **dict.fromkeys(("he", "yi"), "hebrew"),
        **dict.fromkeys(("hi", "mr", "ne", "sa", "bh", "new"), "devanagari"),
        **dict.fromkeys(
            [
                *("el", "hy", "ka", "am", "ti", "bn", "as", "gu", "pa", "ta", "te", "kn"),
                *("ml", "or", "si", "km", "lo", "my", "bo", "dz", "iu", "chr", "dv", "syr"),
            ],
            "other",
        ),
    }
)


def language_of(text: str, sample: int = LANGUAGE_SAMPLE) -> str | None:
    """An ISO 639 code, ``und`` for letters of no language told, None without letters."""
    text = _REFUSED.sub(" ", text[:sample])
    try:
        reliable, _, details = pycld2.detect(text, bestEffort=True)
    except UnicodeEncodeError:  # a lone surrogate (JSON may carry one): drop it and retry
        text = text.encode("utf-8", "ignore").decode("utf-8")
        reliable, _, details = pycld2.detect(text, bestEffort=True)
    except pycld2.error:  # anything else CLD2 refuses: the script alone decides
        reliable, details = False, ()
    if reliable and details:
        code = str(details[0][1])
        if code == "ja" and _KANA.search(text) is None:
            return "zh"  # Han characters alone: CLD2 takes some Chinese for Japanese
        if code not in ("un", "xxx") and not code.startswith(("xx-", "zz")):
            return _RENAMED.get(code, code)
    script = script_of(text)  # only when CLD2 is unsure: a loop in Python over the text
    return None if script is None else _SCRIPT_LANGUAGE.get(script, UNDETERMINED)


def script_of_language(code: str) -> str:
    """The writing system ``script_of`` names for a language code (``fr`` -> ``latin``);
    a script name, ``und`` and drift's ``none`` (no letters) stay as they are."""
    if code in LEGACY_SCRIPTS or code in (UNDETERMINED, "none"):
        return code
    return _LANGUAGE_SCRIPT.get(code, "latin")


def comparable(*columns: Sequence[str]) -> list[list[str]]:
    """The columns as they can be compared: as they are, or, when any holds a value logged
    before languages were identified (a script name such as ``latin``), every value folded
    to its script, so that ``latin`` then ``en`` is no change of language."""
    if not any(value in LEGACY_SCRIPTS for column in columns for value in column):
        return [list(column) for column in columns]
    return [[script_of_language(value) for value in column] for column in columns]


def script_of(text: str, sample: int = 2000) -> str | None:
    """The writing system: ``zh``, ``ja``, ``ko``, ``latin``, ``cyrillic``, … or None for
    text without letters (what the request log held before ``language_of``).

    Japanese text mixes kana with kanji: any kana makes it ``ja``.
    """
    text = text[:sample]
    if text.isascii():  # the common case, without a loop in Python (the log writer's cost)
        return "latin" if ASCII_LETTER.search(text) else None
    counts: Counter[str] = Counter()
    for char in text:
        point = ord(char)
        if char.isascii():
            if char.isalpha():
                counts["latin"] += 1
            continue
        for first, last, script in RANGES:
            if first <= point <= last:
                counts[script] += 1
                break
        else:
            if char.isalpha():
                counts["latin" if point < 0x0250 else "other"] += 1
    if not counts:
        return None
    if counts["ja"]:
        return "ja"
    return counts.most_common(1)[0][0]


def prompt_text(content: dict[str, object] | None) -> str:
    """The user's words in a logged request's content (chat: the user messages)."""
    if not content:
        return ""
    messages = content.get("messages")
    if isinstance(messages, list):
        return "\n".join(
            str(m.get("content", ""))
            for m in messages
            if isinstance(m, dict) and m.get("role") == "user"
        )
    prompt = content.get("prompt")
    if isinstance(prompt, str):
        return prompt
    inputs = content.get("input")
    if isinstance(inputs, list):
        return "\n".join(str(i) for i in inputs)
    return ""
