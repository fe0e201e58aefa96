"""CMRC 2018's answer scoring, transcribed from its official script (cmrc2018_evaluate.py,
v5): a faithful port, quirks included.

- Segmentation (``mixed_segmentation`` with ``rm_punc=True``): lower-case and strip, drop
  the characters in CMRC_PUNCTUATION, make each Chinese character (U+4E00..U+9FA5) a token,
  and tokenize the runs between them with NLTK's word_tokenize. The one difference: NLTK is
  called with ``preserve_line=True`` (no Punkt sentence split, which needs a data download),
  so a full stop inside an English run stays on its word. ASCII , . ? ! ( ) are not in the
  list, so they are not dropped: NLTK makes them tokens of their own.
- F1: the longest common *contiguous* run of tokens (the script's ``find_lcs``) gives
  precision over the prediction's tokens and recall over the answer's; 0 when nothing is
  shared; the best over the answers.
- EM: equal after lower-casing, stripping and dropping CMRC_PUNCTUATION (spaces stay).
"""

from __future__ import annotations

import re

from modelyard.lazy import lazy_module

nltk_tokenize = lazy_module("nltk.tokenize")


# The script's sp_char list; its '……' entry is two characters, so it never matches a single
# character and a lone '…' is kept, as in the script.
CMRC_PUNCTUATION = frozenset(
    [*"-:_*^/\\~`+=", *"，。：？！“”；\u2019《》·、「」（）\uff0d\uff5e『』", "……"]
)
_CHINESE = re.compile(r"[\u4e00-\u9fa5]")


def cmrc_segments(text: str) -> list[str]:
    segments: list[str] = []
    run = ""
    for char in text.lower().strip():
        if char in CMRC_PUNCTUATION:
            continue
        if _CHINESE.match(char):
            if run:
                segments.extend(nltk_tokenize.word_tokenize(run, preserve_line=True))
                run = ""
            segments.append(char)
        else:
            run += char
    if run:
        segments.extend(nltk_tokenize.word_tokenize(run, preserve_line=True))
    return segments


def longest_common_run(first: list[str], second: list[str]) -> int:
    """Length of the longest common contiguous run of tokens (the script's find_lcs)."""
    best = 0
    previous = [0] * (len(second) + 1)
    for token in first:
        current = [0] * (len(second) + 1)
        for j, other in enumerate(second):
            if token == other:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def cmrc_f1(prediction: str, answers: list[str]) -> float:
    predicted = cmrc_segments(prediction)
    scores = []
    for answer in answers:
        expected = cmrc_segments(answer)
        common = longest_common_run(expected, predicted)
        if common == 0:
            scores.append(0.0)
            continue
        precision = common / len(predicted)
        recall = common / len(expected)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def cmrc_without_punctuation(text: str) -> str:
    return "".join(char for char in text.lower().strip() if char not in CMRC_PUNCTUATION)


def cmrc_em(prediction: str, answers: list[str]) -> float:
    predicted = cmrc_without_punctuation(prediction)
    return float(any(cmrc_without_punctuation(answer) == predicted for answer in answers))
