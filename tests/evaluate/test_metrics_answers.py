"""Short-answer metrics against hand-worked examples, and char_f1 against an independent
transcription of CMRC 2018's formula."""

from __future__ import annotations

import pytest
from nltk.tokenize import word_tokenize  # type: ignore[import-untyped]

from modelyard.evaluate.metrics import MetricInputError, MetricOptionError, metric
from modelyard.evaluate.metrics.answers import squad_normalize


@pytest.mark.parametrize(
    ("prediction", "references", "expected"),
    [
        ("The Eiffel Tower!", "eiffel tower", 1.0),
        ("  an   apple ", "apple", 1.0),
        ("《红楼梦》。", "红楼梦", 1.0),
        ("“北京”，中国", "北京中国", 1.0),
        ("Beijing, China", ["Shanghai", "beijing china"], 1.0),
        ("2,000", "2000", 1.0),
        ("theater", "ater", 0.0),  # only whole-word articles go
        ("Paris, France", "Paris", 0.0),
    ],
)
def test_exact_match_normalises_like_squad(
    prediction: str, references: str | list[str], expected: float
) -> None:
    assert metric("exact_match").compute([prediction], [references]).value == expected


def test_squad_normalize_steps() -> None:
    assert squad_normalize("The  Cat's  HAT, a 帽子（红色）！") == "cats hat 帽子红色"


def test_exact_match_without_normalisation_and_its_mean() -> None:
    result = metric("exact_match", normalize=False).compute(
        ["Paris", "paris", "Rome"], ["Paris", "Paris", ["Milan", "Rome"]]
    )
    assert result.per_item == [1.0, 0.0, 1.0]
    assert result.value == pytest.approx(2 / 3)


# CMRC's formula, written again independently: segments as the script makes them, the
# longest common contiguous run found by trying every window.
CMRC_MARKS = set("-:_*^/\\~`+=，。：？！“”；\u2019《》·、「」（）\uff0d\uff5e『』")


def segments(text: str) -> list[str]:
    out: list[str] = []
    run = ""
    for char in text.lower().strip():
        if char in CMRC_MARKS:
            continue
        if "\u4e00" <= char <= "\u9fa5":
            out += [*word_tokenize(run, preserve_line=True), char]
            run = ""
        else:
            run += char
    return out + word_tokenize(run, preserve_line=True)


def longest_window(a: list[str], b: list[str]) -> int:
    windows = {tuple(b[i:j]) for i in range(len(b)) for j in range(i + 1, len(b) + 1)}
    return max((j - i for i in range(len(a)) for j in range(i + 1, len(a) + 1)
                if tuple(a[i:j]) in windows), default=0)  # fmt: skip


def transcribed_f1(prediction: str, answers: list[str]) -> float:
    best = 0.0
    for answer in answers:
        pred, ans = segments(prediction), segments(answer)
        common = longest_window(ans, pred)
        if common:
            p, r = common / len(pred), common / len(ans)
            best = max(best, 2 * p * r / (p + r))
    return best


CHAR_F1_CASES: list[tuple[str, list[str], float]] = [
    # [北,京,大,学] vs [北,京]: run 2, P 2/4, R 1.
    ("北京大学", ["北京"], 2 / 3),
    # [在,1998,年,由,google,公,司,发,布] vs [1998,年]: P 2/9, R 1; ，and 。 dropped.
    ("在1998年，由Google公司发布。", ["1998年"], 4 / 11),
    # [hello,world,你,好] vs [hello,",",world]: the ASCII comma is a token, so the longest
    # common run is one token: P 1/4, R 1/3.
    ("Hello World 你好", ["hello, world"], 2 / 7),
    # [北,大,京] vs [北,京]: a common subsequence of 2 but a common run of 1: P 1/3, R 1/2.
    ("北大京", ["北京"], 2 / 5),
    ("上海", ["北京"], 0.0),
    # [哈,哈] vs [哈]: repeated tokens do not chain into a longer run: P 1/2, R 1.
    ("哈哈", ["哈"], 2 / 3),
    ("北京大学", ["清华", "北京大学"], 1.0),
    ("《三体》作者是刘慈欣", ["刘慈欣"], 2 * (3 / 8) / (3 / 8 + 1)),
]


@pytest.mark.parametrize(("prediction", "answers", "expected"), CHAR_F1_CASES)
def test_char_f1_worked_by_hand_and_by_the_transcription(
    prediction: str, answers: list[str], expected: float
) -> None:
    result = metric("char_f1").compute([prediction], [answers])
    assert result.value == pytest.approx(expected)
    assert transcribed_f1(prediction, answers) == pytest.approx(expected)


def test_char_f1_mean_over_items() -> None:
    result = metric("char_f1").compute([c[0] for c in CHAR_F1_CASES], [c[1] for c in CHAR_F1_CASES])
    assert result.per_item == pytest.approx([c[2] for c in CHAR_F1_CASES])
    assert result.value == pytest.approx(sum(c[2] for c in CHAR_F1_CASES) / len(CHAR_F1_CASES))


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("《红楼梦》", "红楼梦", 1.0),
        ("Hello World", "hello world", 1.0),
        ("hello world", "helloworld", 0.0),  # spaces stay
        ("红楼梦.", "红楼梦", 0.0),  # the ASCII full stop is not in CMRC's list
    ],
)
def test_cmrc_exact_match(prediction: str, answer: str, expected: float) -> None:
    assert metric("cmrc_exact_match").compute([prediction], [answer]).value == expected


@pytest.mark.parametrize(
    ("prediction", "reference", "options", "expected"),
    [
        ("The answer is 1,234.5 dollars", "1234.5", {}, 1.0),
        ("x-5 then 7", "5", {}, 1.0),
        ("it is \u22123 degrees", "-3", {}, 1.0),
        ("1e3", "1000", {}, 1.0),
        ("about 3.14159", "3.14", {}, 0.0),
        ("about 3.14159", "3.14", {"rel_tol": 1e-3}, 1.0),
        ("about 3.14159", "3.14", {"abs_tol": 0.01}, 1.0),
        ("no idea", "42", {}, 0.0),
        ("42", ["forty-two", "42.0"], {}, 1.0),
    ],
)
def test_numeric_match(
    prediction: str, reference: str | list[str], options: dict[str, float], expected: float
) -> None:
    assert metric("numeric_match", **options).compute([prediction], [reference]).value == expected


def test_numeric_match_needs_a_number_in_the_reference() -> None:
    with pytest.raises(MetricInputError, match="item 0 has no number"):
        metric("numeric_match").compute(["42"], ["forty-two"])


def test_contains_with_and_without_case() -> None:
    predictions = ["The capital is Paris.", "It is Lyon", "berlin"]
    references: list[str | list[str]] = ["paris", ["Marseille", "Lyon"], "Berlin"]
    assert metric("contains").compute(predictions, references).per_item == [1.0, 1.0, 1.0]
    exact = metric("contains", ignore_case=False).compute(predictions, references)
    assert exact.per_item == [0.0, 1.0, 0.0]


def test_regex_search_and_full_match() -> None:
    predictions = ["Answer: B", "b", "B) because"]
    references = ["", "", ""]
    found = metric("regex", pattern=r"\bB\b").compute(predictions, references)
    assert found.per_item == [1.0, 0.0, 1.0]
    full = metric("regex", pattern="[A-D]", match="full", ignore_case=True)
    assert full.compute(predictions, references).per_item == [0.0, 1.0, 0.0]


def test_answer_option_errors() -> None:
    with pytest.raises(MetricOptionError, match="not a valid regular expression"):
        metric("regex", pattern="(")
    with pytest.raises(MetricOptionError, match="'match' must be one of search, full"):
        metric("regex", pattern="x", match="prefix")
    with pytest.raises(MetricOptionError, match="'normalize' must be true or false"):
        metric("exact_match", normalize="no")
    with pytest.raises(MetricOptionError, match="'rel_tol' must be a number >= 0"):
        metric("numeric_match", rel_tol=-1)
    with pytest.raises(MetricInputError, match="item 1 has an empty list of references"):
        metric("exact_match").compute(["a", "b"], ["a", []])
