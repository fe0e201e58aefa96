"""Check digits against published values and their near misses."""

from __future__ import annotations

from datetime import date

import pytest

from modelyard.guard.pii.checksums import (
    IBAN_LENGTHS,
    cn_id_check_char,
    cn_id_valid,
    iban_check_digits,
    iban_valid,
    luhn_check_digit,
    luhn_valid,
    resembles_cn_id,
    us_ssn_valid,
    uscc_check_char,
    uscc_valid,
)


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",  # Visa test card
        "5555555555554444",  # Mastercard test card
        "378282246310005",  # American Express test card
        "6011111111111117",  # Discover test card
        "6212345678901265",  # UnionPay test card
        "79927398713",  # the Luhn article's example
    ],
)
def test_luhn_accepts_published_numbers(number: str) -> None:
    assert luhn_valid(number)
    assert luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # last digit off by one
        "4111111111111121",  # two adjacent digits swapped
        "79927398710",
        "0",
        "41111111111111a1",
    ],
)
def test_luhn_rejects_near_misses(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "number",
    ["11010519491231002X", "11010519491231002x", "440524188001010014", "110101199003077299"],
)
def test_cn_id_accepts_valid_numbers(number: str) -> None:
    assert cn_id_valid(number, today=date(2025, 1, 1))


def test_cn_id_check_char_is_iso_7064_mod_11_2() -> None:
    assert cn_id_check_char("11010519491231002") == "X"
    assert cn_id_check_char("44052418800101001") == "4"


@pytest.mark.parametrize(
    ("number", "why"),
    [  # all but the first two carry the check character their other 17 characters give
        ("110105194912310021", "wrong check digit"),
        ("11010519491231002Y", "check character that is not a digit or X"),
        ("110105194913310021", "month 13"),
        ("110105194902300020", "30 February"),
        ("110105179912310024", "born before 1800"),
        ("010105194912310026", "region starting with 0"),
        ("100105194912310028", "no province 10"),
        ("1101051949123100X", "17 characters"),
        ("11010519491231002XX", "19 characters"),
    ],
)
def test_cn_id_rejects_near_misses(number: str, why: str) -> None:
    assert not cn_id_valid(number, today=date(2025, 1, 1)), why


def test_cn_id_born_in_the_future_is_invalid() -> None:
    first17 = "11010520300101001"
    number = first17 + cn_id_check_char(first17)
    assert cn_id_valid(number, today=date(2030, 1, 2))
    assert not cn_id_valid(number, today=date(2029, 12, 31))


@pytest.mark.parametrize(
    "code",
    ["9144030071526726XG", "91350100M000100Y43", "91110000802100433B"],
)
def test_uscc_accepts_valid_codes(code: str) -> None:
    assert uscc_valid(code)
    assert uscc_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("9144030071526726XH", "wrong check character"),
        ("9144030071526726X0", "wrong check character"),
        ("91440300715267260G", "one body character changed"),
        ("9144030O71526726XG", "letter O is not in the alphabet"),
        ("9144030071526726XI", "letter I is not in the alphabet"),
        ("91A4030071526726XG", "region code with a letter"),
        ("9144030071526726X", "17 characters"),
        ("0144030071526726XG", "registration code 0"),
    ],
)
def test_uscc_rejects_near_misses(code: str, why: str) -> None:
    assert not uscc_valid(code), why


@pytest.mark.parametrize(
    "iban",
    [
        "GB82WEST12345698765432",
        "DE89370400440532013000",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "NO9386011117947",
        "BE68539007547034",
        "CH9300762011623852957",
    ],
)
def test_iban_accepts_registry_examples(iban: str) -> None:
    assert iban_valid(iban)
    assert iban_check_digits(iban[:2], iban[4:]) == iban[2:4]


@pytest.mark.parametrize(
    ("iban", "why"),
    [
        ("GB83WEST12345698765432", "check digits off by one"),
        ("GB82WEST12345698765433", "last BBAN digit changed"),
        ("GB82WEST1234569876543", "one character short for GB"),
        ("DE89370400440532013000X", "one character long for DE"),
        ("XX82WEST12345698765432", "unknown country"),
        ("GB8AWEST12345698765432", "check digits with a letter"),
    ],
)
def test_iban_rejects_near_misses(iban: str, why: str) -> None:
    assert not iban_valid(iban), why


def test_iban_length_table_covers_the_common_countries() -> None:
    assert {"DE": 22, "GB": 22, "FR": 27, "NO": 15, "MT": 31, "RU": 33}.items() <= (
        IBAN_LENGTHS.items()
    )


@pytest.mark.parametrize(
    ("ssn", "valid"),
    [
        (("531", "21", "7351"), True),
        (("078", "05", "1120"), True),
        (("000", "21", "7351"), False),
        (("666", "21", "7351"), False),
        (("912", "21", "7351"), False),
        (("531", "00", "7351"), False),
        (("531", "21", "0000"), False),
    ],
)
def test_us_ssn_rules(ssn: tuple[str, str, str], valid: bool) -> None:
    assert us_ssn_valid(*ssn) is valid


@pytest.mark.parametrize(
    ("digits", "resembles"),
    [
        ("110105194912310021", True),  # wrong check digit
        ("110105194913310021", True),  # impossible date, plausible year
        ("11010519491231002", True),  # 17 digits
        ("1101051949123100211", True),  # a digit too many, whole date in place
        ("1101051949133100211", False),  # 19 digits need a real date
        ("6222021234567890128", False),  # a UnionPay card
        ("990105194912310021", False),  # no province 99
        ("11010512341231002", False),  # year 1234
        ("1101051949123100", False),  # 16 digits
    ],
)
def test_resembles_cn_id(digits: str, resembles: bool) -> None:
    assert resembles_cn_id(digits) is resembles
