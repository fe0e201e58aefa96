"""Property tests: every valid identifier is found inside any Chinese or English sentence,
and no identifier with a broken check digit is ever reported as its type.

The generators compute check digits on their own (not with the module under test)."""

from __future__ import annotations

from datetime import date, timedelta

from faker import Faker
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from modelyard.guard.pii import PiiDetector
from modelyard.guard.pii.checksums import (
    CN_PROVINCES,
    IBAN_LENGTHS,
    cn_id_valid,
    resembles_cn_id,
)

DETECTOR = PiiDetector()
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
DIGIT = st.sampled_from("0123456789")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _sentences(locale: str, seed: int) -> list[str]:
    fake = Faker(locale)
    fake.seed_instance(seed)
    return [fake.sentence(nb_words=8) for _ in range(60)]


ZH_SENTENCES = _sentences("zh_CN", 7)
EN_SENTENCES = _sentences("en_US", 7)
CJK_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from("，。："),
    max_size=30,
)


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(DIGIT, min_size=n, max_size=n)


# --- independent check-digit arithmetic -------------------------------------------------


def luhn_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload), start=1):
        doubled = int(char) * (2 if position % 2 else 1)
        total += doubled // 10 + doubled % 10
    return str((10 - total % 10) % 10)


def cn_id_char(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = (12 - sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11) % 11
    return "X" if check == 10 else str(check)


def uscc_char(first17: str) -> str:
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, weights, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def iban_check(country: str, bban: str) -> int:
    numeric = "".join(str(ord(c) - 55) if c.isalpha() else c for c in bban + country + "00")
    return 98 - int(numeric) % 97


# --- generators of valid identifiers ----------------------------------------------------


@st.composite
def cn_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(sorted(CN_PROVINCES))) * 10_000 + draw(st.integers(101, 9999))
    born = date(1900, 1, 1) + timedelta(days=draw(st.integers(0, 45_000)))
    first17 = f"{region:06d}{born:%Y%m%d}{draw(digits(3))}"
    return first17 + draw(st.sampled_from([cn_id_char(first17), cn_id_char(first17).lower()]))


@st.composite
def usccs(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from("159Y")) + draw(st.sampled_from("123"))
    body = draw(st.text(st.sampled_from(USCC_ALPHABET), min_size=9, max_size=9))
    first17 = head + draw(digits(6)) + body
    code = first17 + uscc_char(first17)
    # All digits with a province and a birth year in place: read as a resident ID (typo).
    assume(not cn_id_valid(code) and not resembles_cn_id(first17))
    return code


def grouped(number: str, separator: str) -> str:
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


@st.composite
def cards(draw: st.DrawFn, entity: str) -> str:
    if entity == "BANK_CARD":
        prefix, length = "62" + draw(digits(4)), draw(st.sampled_from([16, 17, 19]))
    else:
        prefix, length = draw(
            st.sampled_from([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("4", 13)])
        )
    payload = prefix + draw(digits(length - 1 - len(prefix)))
    number = payload + luhn_digit(payload)
    assume(not resembles_cn_id(number))  # read as a resident ID with a typo (documented)
    return grouped(number, draw(st.sampled_from(["", " ", "-"])))


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    alphabet = st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    bban = draw(st.text(alphabet, min_size=IBAN_LENGTHS[country] - 4, max_size=34))
    bban = bban[: IBAN_LENGTHS[country] - 4]
    iban = f"{country}{iban_check(country, bban):02d}{bban}"
    return grouped(iban, draw(st.sampled_from(["", " "])))


@st.composite
def cn_mobiles(draw: st.DrawFn) -> str:
    number = "1" + draw(st.sampled_from("3456789")) + draw(digits(9))
    separator = draw(st.sampled_from(["", " ", "-"]))
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086", "86", "+86-"]))
    return prefix + separator.join((number[:3], number[3:7], number[7:]))


@st.composite
def us_ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    group, serial = draw(st.integers(1, 99)), draw(st.integers(1, 9999))
    separator = draw(st.sampled_from(["-", " "]))
    return f"{area:03d}{separator}{group:02d}{separator}{serial:04d}"


VALID = {
    "CN_ID": cn_ids(),
    "CN_USCC": usccs(),
    "BANK_CARD": cards("BANK_CARD"),
    "CREDIT_CARD": cards("CREDIT_CARD"),
    "IBAN": ibans(),
    "CN_MOBILE": cn_mobiles(),
    "US_SSN": us_ssns(),
}
ANY_VALID = st.sampled_from(sorted(VALID)).flatmap(
    lambda entity: st.tuples(st.just(entity), VALID[entity])
)


@st.composite
def contexts(draw: st.DrawFn) -> tuple[str, str]:
    """Text to put on either side of an identifier: a CJK sentence glued to it, or an
    English sentence with a space."""
    if draw(st.booleans()):
        return draw(CJK_TEXT) + draw(st.sampled_from(ZH_SENTENCES)), draw(CJK_TEXT)
    return draw(st.sampled_from(EN_SENTENCES)) + " ", " " + draw(st.sampled_from(EN_SENTENCES))


@PROPERTY
@given(ANY_VALID, contexts())
def test_valid_identifiers_are_found_in_any_sentence(
    identifier: tuple[str, str], context: tuple[str, str]
) -> None:
    entity, value = identifier
    before, after = context
    text = before + value + after
    spans = {(f.entity, f.start, f.end) for f in DETECTOR.detect(text)}
    assert (entity, len(before), len(before) + len(value)) in spans


@PROPERTY
@given(ANY_VALID, st.sampled_from(ZH_SENTENCES))
def test_redaction_hides_and_restores_every_identifier(
    identifier: tuple[str, str], sentence: str
) -> None:
    from modelyard.guard.pii import Redaction

    text = f"{sentence}{identifier[1]}{sentence}"
    redaction = Redaction(DETECTOR)
    redacted = redaction.redact(text)
    assert identifier[1] not in redacted
    assert redaction.restore(redacted) == text


# --- near misses: the check character changed -------------------------------------------


def _other(draw: st.DrawFn, alphabet: str, current: str) -> str:
    return draw(st.sampled_from([c for c in alphabet if c != current.upper()]))


@st.composite
def broken(draw: st.DrawFn) -> tuple[str, str]:
    entity = draw(st.sampled_from(["CN_ID", "CN_USCC", "BANK_CARD", "CREDIT_CARD", "IBAN"]))
    value = draw(VALID[entity])
    if entity == "CN_ID":
        return entity, value[:-1] + _other(draw, "0123456789X", value[-1])
    if entity == "CN_USCC":
        return entity, value[:-1] + _other(draw, USCC_ALPHABET, value[-1])
    if entity == "IBAN":
        check = int(value[2:4])
        wrong = draw(st.integers(2, 98).filter(lambda n: n != check))
        return entity, f"{value[:2]}{wrong:02d}{value[4:]}"
    return entity, value[:-1] + _other(draw, "0123456789", value[-1])


@PROPERTY
@given(broken(), contexts())
def test_a_changed_check_character_is_never_reported_as_its_type(
    identifier: tuple[str, str], context: tuple[str, str]
) -> None:
    entity, value = identifier
    before, after = context
    text = before + value + after
    start, end = len(before), len(before) + len(value)
    overlapping = [f for f in DETECTOR.detect(text) if f.start < end and f.end > start]
    assert entity not in {f.entity for f in overlapping}
