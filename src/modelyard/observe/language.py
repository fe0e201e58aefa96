"""The writing system of a prompt, as a cheap stand-in for its language in drift reports.

Counting Unicode scripts needs no model and takes microseconds; it tells Chinese from
Japanese, Korean, Cyrillic, Arabic and Latin-script text, not English from French.
"""

from __future__ import annotations

import re
from collections import Counter

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


def script_of(text: str, sample: int = 2000) -> str | None:
    """``zh``, ``ja``, ``ko``, ``latin``, ``cyrillic``, … or None for text without letters.

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
