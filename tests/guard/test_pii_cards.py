"""Payment cards of every scheme and length the detector names, and numbers that are not
cards. The IIN ranges here are written from the networks' published tables, not read from
``modelyard.guard.pii.cards``."""

from __future__ import annotations

import random

import pytest

from modelyard.guard.pii import PiiDetector
from modelyard.guard.pii.cards import scheme_of
from modelyard.guard.pii.checksums import (
    luhn_check_digit,
    luhn_valid,
    resembles_cn_id,
    uscc_valid,
)

DETECTOR = PiiDetector()

# scheme, entity, IIN prefixes, lengths issued
SCHEMES = [
    ("visa", "CREDIT_CARD", ["4"], [13, 16, 19]),
    ("mastercard", "CREDIT_CARD", ["51", "52", "53", "54", "55", "2221", "2500", "2720"], [16]),
    ("amex", "CREDIT_CARD", ["34", "37"], [15]),
    ("discover", "CREDIT_CARD", ["6011", "644", "649", "659"], [16, 17, 18, 19]),
    ("diners", "CREDIT_CARD", ["300", "305", "3095", "36", "38", "39"], [14, 16, 19]),
    ("jcb", "CREDIT_CARD", ["3528", "3550", "3589"], [16, 17, 18, 19]),
    ("maestro", "CREDIT_CARD", ["5018", "5020", "5038", "5893", "6304", "6759"], [*range(12, 20)]),
    ("unionpay", "BANK_CARD", ["62", "8100", "8171"], [16, 17, 18, 19]),
    ("mir", "CREDIT_CARD", ["2200", "2201", "2202", "2203", "2204"], [16, 17, 18, 19]),
    ("rupay", "CREDIT_CARD", ["6070", "508", "6521", "6522"], [16]),
    ("verve", "CREDIT_CARD", ["506099", "506198", "507865", "650002", "650027"], [16, 18, 19]),
    ("dankort", "CREDIT_CARD", ["5019"], [16]),
    ("troy", "CREDIT_CARD", ["9792"], [16]),
    ("humo", "CREDIT_CARD", ["9860"], [16]),
    ("uzcard", "CREDIT_CARD", ["8600", "5614"], [16]),
    ("borica", "CREDIT_CARD", ["2205"], [16]),
    ("interpayment", "CREDIT_CARD", ["636"], [16, 19]),
    ("instapayment", "CREDIT_CARD", ["637", "638", "639"], [16]),
]  # fmt: skip
CASES = [
    (scheme, entity, prefix, length)
    for scheme, entity, prefixes, lengths in SCHEMES
    for prefix in prefixes
    for length in lengths
]


def card(prefix: str, length: int, seed: int) -> str:
    """A Luhn-valid number; not one of the 17-19 digit numbers that the detector reads as
    a resident ID with a typo or as a credit code (docs/pii.md, known limits)."""
    rng = random.Random(f"{prefix}-{length}-{seed}")
    while True:
        body = "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        number = prefix + body + luhn_check_digit(prefix + body)
        if not resembles_cn_id(number) and not uscc_valid(number):
            return number


def grouped(number: str, separator: str) -> str:
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


@pytest.mark.parametrize(("scheme", "entity", "prefix", "length"), CASES)
def test_every_scheme_at_every_length_it_issues(
    scheme: str, entity: str, prefix: str, length: int
) -> None:
    for seed in range(3):
        number = card(prefix, length, seed)
        for written in (number, grouped(number, " "), grouped(number, "-")):
            findings = DETECTOR.detect(f"please charge {written}, thanks")
            assert [(f.entity, f.text, f.subtype) for f in findings] == [
                (entity, written, scheme)
            ], written


@pytest.mark.parametrize(
    ("written", "scheme"),
    [
        ("3782 822463 10005", "amex"),  # Amex 4-6-5
        ("3714-496353-98431", "amex"),
        ("3056 930902 5904", "diners"),  # Diners 4-6-4
        ("4111 1111 1111 1111", "visa"),  # the networks' published test numbers
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("6011111111111117", "discover"),
        ("3530111333300000", "jcb"),
        ("6759649826438453", "maestro"),
        ("6200000000000005", "unionpay"),
    ],
)
def test_layouts_and_published_test_numbers(written: str, scheme: str) -> None:
    [finding] = DETECTOR.detect(f"card: {written}.")
    assert (finding.text, finding.subtype) == (written, scheme)


def test_the_longest_iin_prefix_names_the_scheme() -> None:
    # Verve's 650002-650027 lies inside Discover's 65; RuPay's 6521 too.
    assert scheme_of(card("650010", 16, 0)) == "verve"
    assert scheme_of(card("6521", 16, 0)) == "rupay"
    assert scheme_of(card("6530", 16, 0)) == "discover"
    # A length the narrower scheme does not issue falls back to the broader one.
    assert scheme_of(card("650010", 17, 0)) == "discover"


@pytest.mark.parametrize(
    "number",
    [
        card("37", 16, 0),  # Amex is 15 digits
        card("51", 15, 0),  # Mastercard is 16
        card("4", 14, 0),  # Visa is 13, 16 or 19
        card("4", 17, 0),
        card("2100", 16, 0),  # between Mir and Mastercard's 2-series
        card("2721", 16, 0),
        card("1", 16, 0),  # no card network starts with 1 (UATP is not reported)
        card("7", 16, 0),
        card("5018", 11, 0),  # Maestro's shortest is 12
    ],
)
def test_luhn_valid_numbers_no_scheme_issues_are_not_cards(number: str) -> None:
    assert luhn_valid(number)
    assert DETECTOR.detect(f"number {number} here") == []


def test_random_16_digit_numbers_with_a_wrong_luhn_digit_are_not_cards() -> None:
    rng = random.Random(7)
    for _ in range(300):
        prefix = rng.choice(["4", "51", "6011", "62", "3528", "2200"])
        payload = prefix + "".join(rng.choice("0123456789") for _ in range(15 - len(prefix)))
        wrong = rng.choice([d for d in "0123456789" if d != luhn_check_digit(payload)])
        assert DETECTOR.detect(f"ref {payload + wrong}") == []


@pytest.mark.parametrize(
    "text",
    [
        "ISBN 978-3-16-148410-0",
        "ISBN 9783161484100",
        "ISBN 0-306-40615-2",
        "Order #20241206000123 shipped",
        "timestamp 1733450000123, epoch 1733450000",
        "at 2024-05-06T12:30:00.123456Z",
        "tracking 1Z999AA10123456784",
    ],
)
def test_other_numbers_are_not_cards(text: str) -> None:
    assert [f for f in DETECTOR.detect(text) if f.entity.endswith("CARD")] == []


def test_an_18_digit_number_that_is_a_card_and_a_credit_code_is_a_credit_code() -> None:
    """Both check digits pass (1 in 31 of Luhn-valid 18-digit numbers): the credit code, the
    more specific type, wins the span."""
    number = "601126804798253091"
    assert luhn_valid(number) and uscc_valid(number) and scheme_of(number) == "discover"
    assert [f.entity for f in DETECTOR.detect(f"no. {number}")] == ["CN_USCC"]


def test_a_short_maestro_number_bare_needs_to_be_called_a_card() -> None:
    """12-15 digits are also the length of invoice codes and order numbers."""
    number = "581591322598"  # Luhn-valid, Maestro's IIN 58, and an invoice code's shape
    assert DETECTOR.detect(f"发票代码{number}") == []
    assert DETECTOR.detect(f"order {number} shipped") == []
    for text in (f"maestro card {number}", f"储蓄卡{number}", f"no. {grouped(number, ' ')}"):
        [finding] = DETECTOR.detect(text)
        assert (finding.entity, finding.subtype) == ("CREDIT_CARD", "maestro"), text
