"""What the detector finds, where it stops, and which finding wins a span."""

from __future__ import annotations

import itertools
import time

import pytest

from modelyard.guard.pii import ENTITIES, Finding, PiiDetector, UnknownEntity

DETECTOR = PiiDetector()


def found(text: str, detector: PiiDetector = DETECTOR) -> list[tuple[str, str]]:
    return [(f.entity, f.text) for f in detector.detect(text)]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("我的身份证号是11010519491231002X，谢谢", "CN_ID", "11010519491231002X"),
        ("身份证：110105 19491231 002X。", "CN_ID", "110105 19491231 002X"),
        ("电话13812345678。", "CN_MOBILE", "13812345678"),
        ("请拨打+86 138-1234-5678找我", "CN_MOBILE", "+86 138-1234-5678"),
        ("手机0086 13912345678，", "CN_MOBILE", "0086 13912345678"),
        ("手机(+86)139 1234 5678", "CN_MOBILE", "(+86)139 1234 5678"),
        ("座机010-62345678转8001。", "CN_LANDLINE", "010-62345678转8001"),
        ("座机(0755)8600 1234，", "CN_LANDLINE", "(0755)8600 1234"),
        ("call +86 21 6234 5678 now", "CN_LANDLINE", "+86 21 6234 5678"),
        ("卡号6222 0212 3456 7890 128，", "BANK_CARD", "6222 0212 3456 7890 128"),
        ("卡号6212345678901265。", "BANK_CARD", "6212345678901265"),
        ("card 4111-1111-1111-1111 please", "CREDIT_CARD", "4111-1111-1111-1111"),
        ("amex 3782 822463 10005.", "CREDIT_CARD", "3782 822463 10005"),
        ("统一社会信用代码9144030071526726XG。", "CN_USCC", "9144030071526726XG"),
        ("护照号E12345678，", "CN_PASSPORT", "E12345678"),
        ("护照EA1234567。", "CN_PASSPORT", "EA1234567"),
        ("mail LeaVLind@superrito.com!", "EMAIL", "LeaVLind@superrito.com"),
        ("邮箱zhang.san+tag@mail.example.com.cn谢谢", "EMAIL", "zhang.san+tag@mail.example.com.cn"),
        ("IBAN: GB82 WEST 1234 5698 7654 32.", "IBAN", "GB82 WEST 1234 5698 7654 32"),
        ("账户DE89370400440532013000。", "IBAN", "DE89370400440532013000"),
        ("SSN: 531-21-7351", "US_SSN", "531-21-7351"),
        ("from 58.74.121.78 blocked", "IP_ADDRESS", "58.74.121.78"),
        ("地址2001:db8::ff00:42:8329。", "IP_ADDRESS", "2001:db8::ff00:42:8329"),
        ("loopback ::1 only", "IP_ADDRESS", "::1"),
        ("call (212) 555-0123 today", "PHONE", "(212) 555-0123"),
        ("call 212.555.0123 today", "PHONE", "212.555.0123"),
        ("ring +44 20 7946 0958.", "PHONE", "+44 20 7946 0958"),
        ("ring +442079460958.", "PHONE", "+442079460958"),
        ("Desk: 986.291.2294x751", "PHONE", "986.291.2294x751"),
        ("Fax: 001-825-741-0957x5184", "PHONE", "001-825-741-0957x5184"),
        ("call 2125550123 today", "PHONE", "2125550123"),
        ("电话：+1 212 555 0123", "PHONE", "+1 212 555 0123"),
    ],
)
def test_finds_each_format(text: str, entity: str, value: str) -> None:
    assert found(text) == [(entity, value)]


@pytest.mark.parametrize(
    "text",
    [
        "订单号123456789012345678901234",  # a long digit run holds no shorter number
        "编号813812345678。",  # a mobile inside a longer run
        "ID 911010519491231002X",  # a resident ID inside a longer run
        "abc13812345678",  # glued to letters
        "13812345678abc",
        "1110105194912310021X",
        "When: 1998-06-28 14:48:14",  # dates and times are not phones
        "born 27.12.1986 or 1986-12-27",
        "population 1 234 567 890",  # thousands grouping
        "My driver's license number is 481195160",  # 9 bare digits
        "ZIP: 77058, order 2125550123",  # a bare digit run needs a context word
        # phone-shaped, but no numbering plan has them (Faker's, from presidio's set)
        "Fax: 001-420-335-7509x38548",
        "Mobile: 041-412-293",
        "call 21 212 133 2727?",
        "69 987 88 37 office",
        "version 10.0.0.256 and 999.1.1.1",  # not IPv4 addresses
        "at 14:48:14, MAC 00:1A:2B:3C:4D:5E, C++ std::vector",
        "4111111111111112",  # Luhn fails
        "卡号6222021234567890123",  # Luhn fails
        "1234 5678 9012 3456 7890",  # a 20-digit number in groups
        "Please ignore the typo above.",
        "",
    ],
)
def test_finds_nothing_where_there_is_nothing(text: str) -> None:
    assert found(text) == []


def test_cjk_text_around_every_kind_of_identifier() -> None:
    text = (
        "张三的身份证11010519491231002X，手机13812345678，座机010-62345678，"
        "银行卡6212345678901265，公司9144030071526726XG，邮箱zs@example.com。"
    )
    assert [f.entity for f in DETECTOR.detect(text)] == [
        "CN_ID",
        "CN_MOBILE",
        "CN_LANDLINE",
        "BANK_CARD",
        "CN_USCC",
        "EMAIL",
    ]


def test_findings_carry_offsets_text_and_validation() -> None:
    text = "身份证11010519491231002X，电话13812345678"
    assert DETECTOR.detect(text) == [
        Finding("CN_ID", 3, 21, "11010519491231002X", validated=True),
        Finding("CN_MOBILE", 24, 35, "13812345678", validated=False),
    ]


def test_list_of_numbers_separated_by_spaces() -> None:
    assert found("13812345678 13987654321") == [
        ("CN_MOBILE", "13812345678"),
        ("CN_MOBILE", "13987654321"),
    ]
    assert found("call 212-555-0123 212-555-0199") == [
        ("PHONE", "212-555-0123"),
        ("PHONE", "212-555-0199"),
    ]


def test_a_validated_finding_wins_over_a_pattern_on_the_same_digits() -> None:
    # 58.74.121.78 is also a dotted 10-digit run; 531-21-7351 is also phone-shaped.
    assert found("58.74.121.78") == [("IP_ADDRESS", "58.74.121.78")]
    assert found("SSN 531-21-7351") == [("US_SSN", "531-21-7351")]
    assert found("+86 138 1234 5678") == [("CN_MOBILE", "+86 138 1234 5678")]


def test_an_id_with_a_wrong_check_digit_is_not_a_bank_card() -> None:
    # Gansu IDs start with 62 like UnionPay cards; this one is Luhn-valid by chance.
    assert found("身份证620102199001010000") == []
    assert found("卡号620102199001010000") == []


def test_an_id_that_is_also_luhn_valid_is_an_id() -> None:
    number = "620102199001010257"  # a valid Gansu ID whose digits also pass Luhn
    assert found(f"号码{number}") == [("CN_ID", number)]


def test_bank_card_and_credit_card_are_told_apart_by_iin() -> None:
    assert found("6212345678901265") == [("BANK_CARD", "6212345678901265")]
    assert found("4111111111111111") == [("CREDIT_CARD", "4111111111111111")]
    assert found("5555555555554444") == [("CREDIT_CARD", "5555555555554444")]
    assert found("1234567812345670") == []  # Luhn-valid, no card network's IIN


def test_landline_forms_that_are_left_alone() -> None:
    assert found("座机010-6234567") == []  # Beijing numbers have 8 digits
    assert found("代码075586001234") == []  # bare 12 digits from 0: often an invoice code
    assert found("电话0755-86001234") == [("CN_LANDLINE", "0755-86001234")]
    assert found("电话07558600123") == [("CN_LANDLINE", "07558600123")]
    assert found("电话01062345678") == [("CN_LANDLINE", "01062345678")]
    assert found("座机010-12345678") == []  # no number starts with 1 after the area code


def test_an_iban_followed_by_words_ends_at_its_country_length() -> None:
    assert found("IBAN AT61 1904 3002 3457 3201 THE END") == [("IBAN", "AT61 1904 3002 3457 3201")]


def test_a_card_followed_or_preceded_by_other_numbers() -> None:
    assert found("card 4111 1111 1111 1111 12/25") == [("CREDIT_CARD", "4111 1111 1111 1111")]
    assert found("no. 12 4111 1111 1111 1111") == [("CREDIT_CARD", "4111 1111 1111 1111")]
    # the same width of group before or after: one longer number, not a card
    assert found("1234 4111 1111 1111 1111") == []
    assert found("4111 1111 1111 1111 1234") == []


def test_only_the_requested_entities() -> None:
    detector = PiiDetector(["cn_mobile", "EMAIL"])
    assert detector.entities == {"CN_MOBILE", "EMAIL"}
    text = "身份证11010519491231002X 手机13812345678 a@b.co"
    assert found(text, detector) == [("CN_MOBILE", "13812345678"), ("EMAIL", "a@b.co")]
    assert found("6212345678901265", PiiDetector(["CREDIT_CARD"])) == []


def test_a_lower_type_fills_in_when_the_winner_is_not_requested() -> None:
    phones = PiiDetector(["PHONE"])
    assert found("手机+86 138 1234 5678", phones) == [("PHONE", "+86 138 1234 5678")]


def test_unknown_entity_names_the_known_ones() -> None:
    with pytest.raises(UnknownEntity, match=r"PASSPORT_US.*known: .*CN_ID"):
        PiiDetector(["PASSPORT_US", "CN_ID"])


def test_all_entities() -> None:
    assert PiiDetector().entities == ENTITIES
    assert {
        "CN_ID",
        "CN_MOBILE",
        "BANK_CARD",
        "CN_USCC",
        "CN_PASSPORT",
        "CN_LANDLINE",
        "EMAIL",
        "PHONE",
        "CREDIT_CARD",
        "US_SSN",
        "IBAN",
        "IP_ADDRESS",
    } == ENTITIES


def test_findings_are_sorted_and_never_overlap() -> None:
    text = " ".join(["4111 1111 1111 1111", "58.74.121.78", "(212) 555-0123", "a@b.co"] * 50)
    findings = DETECTOR.detect(text)
    assert len(findings) == 200
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


@pytest.mark.parametrize(
    "unit",
    ["1 ", "1.", "1-", "a:", "a@", "1" * 64 + " ", "x" * 64 + "@", "中1", "+1 ", "(1) "],
)
def test_scanning_stays_linear_on_adversarial_texts(unit: str) -> None:
    small = unit * (2_000 // len(unit))
    large = unit * (40_000 // len(unit))
    t0 = time.perf_counter()
    DETECTOR.detect(small)
    t1 = time.perf_counter()
    DETECTOR.detect(large)
    t2 = time.perf_counter()
    # 20x the text: quadratic would be 400x; allow a noisy machine 60x plus a floor.
    assert t2 - t1 < 60 * (t1 - t0) + 0.05
