from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.observe.language import prompt_text, script_of


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
