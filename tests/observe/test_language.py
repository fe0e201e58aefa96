from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.observe.language import (
    LANGUAGE_SAMPLE,
    comparable,
    language_of,
    prompt_text,
    script_of,
    script_of_language,
)


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Write one sentence about the ocean.", "latin"),
        ("Écris une phrase sur l'océan.", "latin"),
        ("请用一句话描述大海。", "zh"),
        ("海についての文を一つ書いてください。", "ja"),  # kanji and kana: Japanese
        ("바다에 대해 한 문장 써 주세요.", "ko"),
        ("Напиши одно предложение об океане.", "cyrillic"),  # noqa: RUF001
        ("اكتب جملة واحدة عن المحيط", "arabic"),
        ("12345 !!!", None),
        ("", None),
        ("我的 email 是 a@b.c，谢谢你的帮助", "zh"),
    ],
)
def test_scripts(text: str, script: str | None) -> None:
    assert script_of(text) == script


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_ascii_text_is_latin_exactly_when_it_has_a_letter(text: str) -> None:
    """The ASCII shortcut gives what counting each character gives."""
    assert script_of(text) == ("latin" if any(c.isalpha() for c in text) else None)
    assert script_of(text + "é") == "latin"  # the same text down the counting path


@pytest.mark.parametrize("sample", [1, 5, 2000])
def test_only_the_sample_counts(sample: int) -> None:
    assert script_of("12345" + "海" * 10, sample=sample) == (None if sample <= 5 else "zh")


def test_prompt_text_takes_the_users_words() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "Bye"},
        ],
        "response": "ok",
    }
    assert prompt_text(chat) == "Hello\nBye"
    assert prompt_text({"prompt": "p"}) == "p"
    assert prompt_text({"input": ["a", "b"]}) == "a\nb"
    assert prompt_text(None) == ""


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Write one sentence about the ocean, please.", "en"),
        ("Écris une phrase sur l'océan, s'il te plaît.", "fr"),
        ("Schreib bitte einen Satz über das Meer.", "de"),
        ("Escribe una frase sobre el océano, por favor.", "es"),
        ("Scrivi una frase sull'oceano, per favore.", "it"),
        ("Escreva uma frase sobre o oceano, por favor.", "pt"),
        ("Schrijf alsjeblieft een zin over de oceaan.", "nl"),
        ("Napisz proszę jedno zdanie o oceanie.", "pl"),
        ("Напиши одно предложение об океане, пожалуйста.", "ru"),  # noqa: RUF001
        ("Напиши, будь ласка, одне речення про океан.", "uk"),
        ("请用一句话描述大海。", "zh"),
        ("請用一句話描述大海。", "zh"),  # traditional characters: Chinese all the same
        ("海についての文を一つ書いてください。", "ja"),
        ("바다에 대해 한 문장 써 주세요.", "ko"),
        ("اكتب جملة واحدة عن المحيط من فضلك", "ar"),
        ("כתוב בבקשה משפט אחד על האוקיינוס", "he"),  # CLD2 says "iw"; ISO 639-1 is "he"
        ("कृपया समुद्र के बारे में एक वाक्य लिखिए।", "hi"),
        ("กรุณาเขียนประโยคเกี่ยวกับมหาสมุทร", "th"),
        ("Γράψε μια πρόταση για τον ωκεανό, σε παρακαλώ.", "el"),  # noqa: RUF001
        ("Lütfen okyanus hakkında bir cümle yaz.", "tr"),  # noqa: RUF001
        ("Hãy viết một câu về đại dương.", "vi"),
        ("我的 email 是 a@b.c，谢谢你的帮助", "zh"),
    ],
)
def test_languages(text: str, language: str) -> None:
    assert language_of(text) == language


def test_no_letters_is_none_and_letters_of_no_known_language_are_und() -> None:
    assert language_of("") is None
    assert language_of("12345 !!! 3.14") is None
    assert language_of("hi") == "und"  # too short for CLD2, and Latin script is many languages
    assert language_of("你好") == "zh"  # too short for CLD2 alone; Han script is Chinese


@pytest.mark.parametrize(
    "text",
    [
        "Tell me\x01 about\x1b[31m the ocean\x7f and the sea.",  # controls CLD2 refuses
        "Tell me about the ocean \ud800 and the sea, please.",  # a lone surrogate
    ],
)
def test_text_cld2_refuses_is_still_identified(text: str) -> None:
    assert language_of(text) == "en"


def test_only_the_language_sample_counts() -> None:
    french = "Je voudrais réserver une table pour deux personnes ce soir. "
    english = "I would like to book a table for two people tonight, please. "
    text = french * (LANGUAGE_SAMPLE // len(french) + 1) + english * 100
    assert language_of(text) == "fr"
    assert language_of(text, sample=len(text)) == "en"


def test_language_codes_fold_to_the_scripts_of_old_rows() -> None:
    assert [script_of_language(c) for c in ("en", "fr", "ru", "ar", "hi", "zh", "ja")] == [
        "latin",
        "latin",
        "cyrillic",
        "arabic",
        "devanagari",
        "zh",
        "ja",
    ]
    assert [script_of_language(c) for c in ("latin", "und", "none", "el")] == [
        "latin",
        "und",
        "none",
        "other",
    ]


def test_old_script_values_make_both_windows_compare_by_script() -> None:
    reference, current = ["latin", "latin", "zh", "none"], ["en", "fr", "zh", "ru"]
    assert comparable(reference, current) == [
        ["latin", "latin", "zh", "none"],
        ["latin", "latin", "zh", "cyrillic"],
    ]
    # Without an old value, languages stay languages: English to French is a change.
    assert comparable(["en", "en"], ["fr", "zh"]) == [["en", "en"], ["fr", "zh"]]


DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def real_texts() -> dict[str, list[str]]:
    """../shared/datasets (sources and licenses in its README): NQ-open and banking77 in
    English, CMRC 2018's questions and paragraphs (Chinese Wikipedia) in Chinese."""
    with (DATASETS / "nq_open_dev.jsonl").open() as lines:
        english = [json.loads(line)["question"] for line in lines]
    with (DATASETS / "banking77_test.csv").open(newline="") as rows:
        english += [row["text"] for row in csv.DictReader(rows)]
    cmrc = json.loads((DATASETS / "cmrc2018_dev_squad.json").read_text())
    paragraphs = [p for article in cmrc["data"] for p in article["paragraphs"]]
    chinese = [q["question"] for p in paragraphs for q in p["qas"]]
    chinese += sorted({p["context"] for p in paragraphs})
    return {"en": english, "zh": chinese}


def test_real_english_and_chinese_text() -> None:
    for language, texts in real_texts().items():
        found = [language_of(text) for text in texts]
        accuracy = sum(f == language for f in found) / len(texts)
        assert accuracy >= 0.99, (language, accuracy)  # measured: 0.999 and 0.996


@given(st.text(max_size=60))
def test_any_text_gets_an_answer(text: str) -> None:
    """Controls, noncharacters and lone surrogates included: the log writer never fails."""
    found = language_of(text)
    assert found is None or (found and found.isascii())
    if script_of(text) is None:  # no letters
        assert found is None
