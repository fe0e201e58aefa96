"""Placeholders of one request, and putting the originals back, whole or streamed."""

from __future__ import annotations

import itertools

import pytest

from modelyard.guard.pii import Finding, PiiDetector, Redaction

DETECTOR = PiiDetector()


def test_redacts_with_numbered_placeholders_per_type() -> None:
    redaction = Redaction(DETECTOR)
    text = "电话13812345678，手机13987654321，邮箱zs@example.com，再打13812345678"
    assert redaction.redact(text) == (
        "电话<CN_MOBILE_1>，手机<CN_MOBILE_2>，邮箱<EMAIL_1>，再打<CN_MOBILE_1>"
    )
    assert redaction.counts() == {"CN_MOBILE": 3, "EMAIL": 1}
    assert [f.text for f in redaction.findings] == [
        "13812345678",
        "13987654321",
        "zs@example.com",
        "13812345678",
    ]


def test_placeholders_hold_across_the_texts_of_a_request() -> None:
    redaction = Redaction(DETECTOR)
    system = redaction.redact("The customer is Zs@Example.com, card 4111 1111 1111 1111.")
    user = redaction.redact("Email zs@example.com about card 4111111111111111 and (212) 555-0123")
    assert system == "The customer is <EMAIL_1>, card <CREDIT_CARD_1>."
    assert user == "Email <EMAIL_1> about card <CREDIT_CARD_1> and <PHONE_1>"
    assert redaction.counts() == {"EMAIL": 2, "CREDIT_CARD": 2, "PHONE": 1}
    # one value written two ways restores to the way it was first written
    assert redaction.restore("<EMAIL_1>") == "Zs@Example.com"


def test_restore_round_trip() -> None:
    redaction = Redaction(DETECTOR)
    text = (
        "我是张三，身份证11010519491231002X，电话+86 138-1234-5678，IBAN DE89370400440532013000。"
    )
    redacted = redaction.redact(text)
    assert "11010519491231002X" not in redacted
    assert redaction.restore(redacted) == text


def test_restore_leaves_unknown_placeholders_and_lookalikes() -> None:
    redaction = Redaction(DETECTOR)
    redaction.redact("call 13812345678")
    assert redaction.restore("<CN_MOBILE_1> <CN_MOBILE_2> <cn_mobile_1> <PHONE_1> a<b") == (
        "13812345678 <CN_MOBILE_2> <cn_mobile_1> <PHONE_1> a<b"
    )


def test_a_text_without_pii_is_returned_as_is() -> None:
    redaction = Redaction(DETECTOR)
    assert redaction.redact("nothing to see here") == "nothing to see here"
    assert redaction.findings == []
    assert redaction.counts() == {}
    assert redaction.restore("<PHONE_1>") == "<PHONE_1>"


def test_findings_is_a_copy() -> None:
    redaction = Redaction(DETECTOR)
    redaction.redact("a@b.co")
    redaction.findings.clear()
    assert redaction.findings == [Finding("EMAIL", 0, 6, "a@b.co", validated=False)]


def test_redaction_with_a_narrow_detector_keeps_other_types() -> None:
    redaction = Redaction(PiiDetector(["EMAIL"]))
    assert redaction.redact("a@b.co 13812345678") == "<EMAIL_1> 13812345678"


def _request() -> tuple[Redaction, str, str]:
    redaction = Redaction(DETECTOR)
    redaction.redact("身份证11010519491231002X 电话13812345678 mail a@b.co")
    response = "好的，<CN_ID_1>已登记；<CN_MOBILE_1>和<EMAIL_1>，<X>与<CN_MOBILE_9> <"
    return redaction, response, redaction.restore(response)


def test_restore_of_the_streamed_response_example() -> None:
    _, _, restored = _request()
    assert restored == ("好的，11010519491231002X已登记；13812345678和a@b.co，<X>与<CN_MOBILE_9> <")


def _stream(redaction: Redaction, chunks: list[str]) -> str:
    restorer = redaction.stream_restorer()
    return "".join(restorer.feed(chunk) for chunk in chunks) + restorer.flush()


def test_stream_restorer_with_every_split_into_two_and_three_chunks() -> None:
    redaction, response, restored = _request()
    cuts = range(len(response) + 1)
    for i in cuts:
        assert _stream(redaction, [response[:i], response[i:]]) == restored, i
    for i, j in itertools.combinations(cuts, 2):
        chunks = [response[:i], response[i:j], response[j:]]
        assert _stream(redaction, chunks) == restored, (i, j)


def test_stream_restorer_one_character_at_a_time() -> None:
    redaction, response, restored = _request()
    assert _stream(redaction, list(response)) == restored


def test_stream_restorer_holds_back_only_a_possible_placeholder() -> None:
    redaction, _, _ = _request()
    restorer = redaction.stream_restorer()
    assert restorer.feed("call <CN_MOB") == "call "
    assert restorer.feed("ILE_") == ""
    assert restorer.feed("1> now <") == "13812345678 now "
    assert restorer.feed("b> and <CN_ID_1") == "<b> and "
    assert restorer.feed("0") == "<CN_ID_10"  # no such placeholder can follow any more
    assert restorer.flush() == ""


def test_stream_restorer_flush_emits_an_unfinished_tail_as_is() -> None:
    redaction, _, _ = _request()
    restorer = redaction.stream_restorer()
    assert restorer.feed("see <EMAIL_") == "see "
    assert restorer.flush() == "<EMAIL_"


def test_stream_restorer_without_placeholders_passes_text_through() -> None:
    restorer = Redaction(DETECTOR).stream_restorer()
    assert restorer.feed("a <PHONE_") == "a <PHONE_"


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 13])
def test_stream_restorer_with_fixed_chunk_sizes(chunk_size: int) -> None:
    redaction, response, restored = _request()
    chunks = [response[i : i + chunk_size] for i in range(0, len(response), chunk_size)]
    assert _stream(redaction, chunks) == restored
