"""Phone numbers of every country through libphonenumber, the context rule for national
formats, the configured regions, and numbers that are not phone numbers."""

from __future__ import annotations

import phonenumbers
import pytest

from modelyard.guard.pii import DEFAULT_PHONE_REGIONS, PiiDetector, UnknownRegion

DETECTOR = PiiDetector()


def phones(text: str, detector: PiiDetector = DETECTOR) -> list[tuple[str, str | None]]:
    return [(f.text, f.subtype) for f in detector.detect(text) if f.entity == "PHONE"]


# Real numbering plans: public offices, operators' published formats.
INTERNATIONAL = {
    "DE": ["+49 30 901820", "+49 151 23456789", "0049 30 901820"],
    "FR": ["+33 1 42 68 53 00", "+33 6 12 34 56 78"],
    "JP": ["+81 3-3224-5000", "+81 90-1234-5678"],
    "IN": ["+91 98765 43210", "+91-22-2262-1234"],
    "BR": ["+55 11 98765-4321"],
    "AU": ["+61 2 9876 5432", "+61 412 345 678"],
    "RU": ["+7 495 123-45-67"],
    "MX": ["+52 55 1234 5678"],
    "ES": ["+34 912 345 678"],
    "IT": ["+39 06 1234 5678"],
    "KR": ["+82 2-312-3456"],
    "SG": ["+65 6123 4567"],
    "HK": ["+852 2123 4567"],
    "TW": ["+886 2 2345 6789"],
    "CA": ["+1 416 555 0199"],
    "US": ["+1 (212) 555-0123", "+12125550123"],
    "GB": ["+44 20 7946 0958", "+442079460958", "+44 (0)20 7946 0958"],
    "ZA": ["+27 21 123 4567"],
    "NG": ["+234 802 123 4567"],
    "EG": ["+20 10 1234 5678"],
    "CH": ["+41 44 668 18 00"],
    "NL": ["+31 20 123 4567"],
    "SE": ["+46 8 123 456 78"],
    "PL": ["+48 22 123 45 67"],
    "TR": ["+90 212 345 67 89"],
    "ID": ["+62 812-3456-7890"],
    "VN": ["+84 91 234 56 78"],
    "AR": ["+54 11 2345-6789"],
}
CASES = [(country, number) for country, numbers in INTERNATIONAL.items() for number in numbers]


@pytest.mark.parametrize(("country", "number"), CASES)
def test_international_numbers_of_every_country(country: str, number: str) -> None:
    assert phones(f"Reach our office at {number}.") == [(number, country)]
    assert phones(f"地址见官网，号码{number}。") == [(number, country)]  # in Chinese text


def test_every_region_libphonenumber_knows_in_international_format() -> None:
    """Each region's example number, written as people write it internationally."""
    missed = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        written = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if [text for text, _ in phones(f"number: {written} (office)")] != [written]:
            missed.append(written)
    assert missed == []


@pytest.mark.parametrize(
    "text",
    [
        "call (212) 555-0123 today",  # an area code in parentheses
        "212-555-0123 is the front desk",  # three groups
        "212.555.0123",
        "Desk: 986.291.2294x751",  # with an extension
        "0161 496 0123",  # a UK number in three groups
        "(0161) 496 0123",
    ],
)
def test_national_formats_of_the_configured_regions(text: str) -> None:
    assert len(phones(text)) == 1


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("call 2125550123 tomorrow", "2125550123"),
        ("my phone is 01614960123", "01614960123"),
        ("Tel: 212 5550123", "212 5550123"),
        ("请拨打电话2125550123联系我们", "2125550123"),
        ("手机 01614960123", "01614960123"),
        ("2125550123 (mobile)", "2125550123"),
    ],
)
def test_a_bare_national_number_needs_a_context_word(text: str, number: str) -> None:
    assert [t for t, _ in phones(text)] == [number]


@pytest.mark.parametrize(
    "text",
    [
        "Order 2125550123 shipped",  # the same digits, no context word
        "invoice 01614960123 paid",
        "ID 212 5550123 on file",  # two groups
    ],
)
def test_without_a_context_word_a_bare_national_number_is_not_a_phone(text: str) -> None:
    assert phones(text) == []


def test_national_formats_follow_the_configured_regions() -> None:
    australian = "call me on (07) 5331 0577?"
    assert phones(australian) == []  # Australia is not a default region
    assert phones(australian, PiiDetector(phone_regions=["AU"])) == [("(07) 5331 0577", "AU")]
    german = "Tel. 030 901820"
    assert phones(german) == []
    assert phones(german, PiiDetector(phone_regions=["de", "US"])) == [("030 901820", "DE")]
    # International numbers need no region at all.
    bare = PiiDetector(phone_regions=[])
    assert phones("+44 20 7946 0958", bare) == [("+44 20 7946 0958", "GB")]


def test_regions_are_checked() -> None:
    assert PiiDetector(phone_regions=[" us", "GB "]).phone_regions == ("US", "GB")
    assert PiiDetector().phone_regions == DEFAULT_PHONE_REGIONS
    with pytest.raises(UnknownRegion, match=r"XX.*ISO 3166-1"):
        PiiDetector(phone_regions=["US", "XX"])


@pytest.mark.parametrize(
    "text",
    [
        "call +1-944-435-4352",  # 944 is no North American area code in service
        "phone: +44 20 1234",  # too short for London
        "+86 123 4567 8901",  # no Chinese number starts with 12
        "call 555-0123",  # seven digits: no area code
        "When: 1998-06-28 14:48:14",
        "called at 2024-05-06 12:30 about it",
        "call logged at 1701234567 (unix time)",
        "phone ISBN 978-3-16-148410-0",
        "ISBN 9-782-73811-5",  # the digits of a valid US number, not its groups
        "ref 4-136-71147-6",
        "version 10.0.0.256, build 2125550123",
        "call ext. 1234",
        "population 1 234 567 890",
        "call 1234 5678 9012 3456",  # a card-like number in groups of four
        "1 " * 40,
    ],
)
def test_numbers_that_are_not_phone_numbers(text: str) -> None:
    assert phones(text) == []


def test_a_list_of_numbers() -> None:
    assert [t for t, _ in phones("call 212-555-0123 212-555-0199")] == [
        "212-555-0123",
        "212-555-0199",
    ]
    assert [t for t, _ in phones("from 58.74.121.78 call (212) 555-0123")] == ["(212) 555-0123"]


def test_chinese_mobiles_stay_chinese_mobiles() -> None:
    for text in ("电话13812345678。", "+86 138 1234 5678", "手机0086 13912345678"):
        assert [f.entity for f in DETECTOR.detect(text)] == ["CN_MOBILE"], text


def test_a_london_number_is_also_a_guangzhou_landline() -> None:
    """020 is London's area code and Guangzhou's: the Chinese type, more specific, wins the
    span; a detector for PHONE alone reports the phone."""
    text = "020 7946 0958"
    assert [f.entity for f in DETECTOR.detect(text)] == ["CN_LANDLINE"]
    assert phones(text, PiiDetector(["PHONE"])) == [(text, "GB")]
