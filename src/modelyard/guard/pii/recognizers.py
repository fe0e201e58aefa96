"""One recognizer per kind of identifier: a precompiled pattern that finds candidates and a
judge that names the entity of a candidate, or rejects it. Phone numbers are libphonenumber's
(``phones.py``), the card schemes' IIN ranges are in ``cards.py``.

Boundaries are explicit lookarounds on ASCII letters and digits, never ``\\b``: in Python a
CJK character and a digit are both ``\\w``, so ``\\b`` would miss "电话13812345678。". All
patterns are compiled with ``re.ASCII`` (``[0-9]`` only, no full-width digits), and each
starts where no letter or digit precedes it, so a long run is tried once, not at each of
its characters: every scan is linear in the text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from modelyard.guard.pii.cards import BANK_CARD_SCHEMES, scheme_of
from modelyard.guard.pii.checksums import (
    IBAN_LENGTHS,
    cn_id_valid,
    iban_valid,
    luhn_valid,
    resembles_cn_id,
    us_ssn_valid,
    uscc_valid,
)

Span = tuple[str, int, int, str | None]  # entity, start, end, subtype (a card's scheme)
Judge = Callable[[re.Match[str]], Span | None]
_FLAGS = re.ASCII | re.VERBOSE
_BEFORE = r"(?<![0-9A-Za-z])"
_AFTER = r"(?![0-9A-Za-z])"
_GROUPS = re.compile(r"[0-9A-Za-z]+")
_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")
_DIGITS = "0123456789"


@dataclass(frozen=True)
class Recognizer:
    """Finds the candidates of ``pattern`` in a text; ``judge`` names the entity of each it
    keeps and its span (a candidate may hold a number and more digits around it)."""

    name: str
    entities: frozenset[str]
    pattern: re.Pattern[str]
    judge: Judge
    validated: bool  # its entities passed a checksum (or ipaddress)
    needs: str = ""  # a character every match contains; absent from a text, skip the scan

    def find(self, text: str) -> Iterator[Span]:
        if self.needs and self.needs not in text:
            return
        for match in self.pattern.finditer(text):
            span = self.judge(match)
            if span is not None:
                yield span


def _whole(match: re.Match[str], entity: str) -> Span:
    return entity, match.start(), match.end(), None


def _glued(text: str, start: int, end: int, separators: str) -> bool:
    """Whether a grouped number goes on past the match with one of its separators and a
    group of the same width: then it is a piece of a longer number ("1234 5678 9012 3456
    7890"), not a number of its own ("4111 1111 1111 1111 12/25" is a card and a date)."""
    value = text[start:end]
    if start and text[start - 1] in separators:
        first = len(value) - len(value.lstrip(_DIGITS))
        window = text[max(0, start - 1 - first - 1) : start - 1]
        if first and len(window) - len(window.rstrip(_DIGITS)) == first:
            return True
    if end < len(text) and text[end] in separators:
        last = len(value) - len(value.rstrip(_DIGITS))
        window = text[end + 1 : end + 1 + last + 1]
        if last and len(window) - len(window.lstrip(_DIGITS)) == last:
            return True
    return False


# --- Chinese resident ID (GB 11643): 6 region + 8 birth date + 3 sequence + check char.
_CN_ID = re.compile(
    _BEFORE
    + r"""[1-9][0-9]{5}(?P<s>[ ]?)(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])
    (?P=s)[0-9]{3}[0-9Xx]"""
    + _AFTER,
    _FLAGS,
)


def _judge_cn_id(match: re.Match[str]) -> Span | None:
    return _whole(match, "CN_ID") if cn_id_valid(match.group().replace(" ", "")) else None


# --- Unified social credit code (GB 32100): 18 characters of a 31-character alphabet.
_USCC_CHAR = "[0-9A-HJ-NP-RTUWXY]"
_CN_USCC = re.compile(
    _BEFORE + rf"[1-9A-HJ-NP-RTUWXY]{_USCC_CHAR}[0-9]{{6}}{_USCC_CHAR}{{10}}" + _AFTER, _FLAGS
)


def _judge_uscc(match: re.Match[str]) -> Span | None:
    value = match.group()
    if value[:17].isdigit() and resembles_cn_id(value[:17]):
        return None
    return _whole(match, "CN_USCC") if uscc_valid(value) else None


# --- Card numbers: 12-19 digits, bare or in groups separated by one kind of space or dash.
# Not the "25" of an expiry date "12/25" before it, nor the "12" of one after it, nor the
# first digits of an IP address or a decimal number.
_CARD = re.compile(
    _BEFORE + r"(?<![0-9][/.])[0-9](?:[ -]?[0-9]){11,18}(?![0-9A-Za-z]|[/.][0-9])", _FLAGS
)
_CARD_LAYOUTS = frozenset({(4, 6, 5), (4, 6, 4), (6, 13)})  # Amex, Diners, some 19-digit UnionPay


# Maestro's 12-15 digit cards share their length with invoice and order numbers: said to be
# cards, or grouped as cards are, they are; bare and unannounced, not.
_CARD_CONTEXT = re.compile(
    r"(?<![a-z])(?:cards?|carte|karte|tarjeta|cart[aã]o|maestro|debit|pay|paid|charge)"
    r"(?![a-z])|卡",
    re.IGNORECASE,
)
_SHORT_CARD = 16


def _card(text: str, digits: str, start: int, end: int) -> Span | None:
    """BANK_CARD for Chinese bank cards (UnionPay, older domestic cards), CREDIT_CARD for
    every other scheme, with the scheme; None unless the Luhn digit is right and a scheme
    issues the IIN at that length."""
    if not luhn_valid(digits) or resembles_cn_id(digits):
        return None
    scheme = scheme_of(digits)
    if scheme is None:
        return None
    bare_short = len(digits) < _SHORT_CARD and len(digits) == end - start
    if (
        bare_short
        and scheme == "maestro"
        and not _CARD_CONTEXT.search(text, max(0, start - 40), start)
    ):
        return None
    return ("BANK_CARD" if scheme in BANK_CARD_SCHEMES else "CREDIT_CARD"), start, end, scheme


def _judge_card(match: re.Match[str]) -> Span | None:
    value = match.group()
    separators = set(_SEPARATORS.findall(value))
    if not separators:
        return _card(match.string, value, match.start(), match.end())
    if len(separators) > 1:
        return None
    separator = separators.pop()
    groups = [(match.start() + g.start(), match.start() + g.end()) for g in _GROUPS.finditer(value)]
    if _card_layout(groups):  # one number, valid or not
        return _card_in(match.string, groups, separator)
    # Else the card may be a part: "no. 12 4111 1111 1111 1111". The most groups win.
    for count in range(len(groups) - 1, 1, -1):
        for first in range(len(groups) - count + 1):
            part = groups[first : first + count]
            if _card_layout(part) and (found := _card_in(match.string, part, separator)):
                return found
    return None


def _card_layout(groups: list[tuple[int, int]]) -> bool:
    layout = tuple(end - start for start, end in groups)
    tidy = all(n == 4 for n in layout[:-1]) and layout[-1] <= 4
    return 12 <= sum(layout) <= 19 and (tidy or layout in _CARD_LAYOUTS)


def _card_in(text: str, groups: list[tuple[int, int]], separator: str) -> Span | None:
    start, end = groups[0][0], groups[-1][1]
    if _glued(text, start, end, separator):
        return None
    return _card(text, text[start:end].replace(separator, ""), start, end)


# --- IBAN (ISO 13616): country, 2 check digits, BBAN, bare or in groups of 4.
_IBAN = re.compile(
    _BEFORE + r"[A-Z]{2}[0-9]{2}(?:[ ]?[0-9A-Z]{4}){2,7}(?:[ ]?[0-9A-Z]{1,3})?" + _AFTER,
    _FLAGS | re.IGNORECASE,
)


def _judge_iban(match: re.Match[str]) -> Span | None:
    value = match.group()
    length = IBAN_LENGTHS.get(value[:2].upper())
    # The country's length ends the IBAN; a word after it ("... 5678 THE") is not part of it.
    end = _end_of_nth_char(value, length) if length else None
    if end is None or value[end : end + 1] not in ("", " "):
        return None
    if not iban_valid(value[:end].replace(" ", "").upper()):
        return None
    return "IBAN", match.start(), match.start() + end, None


def _end_of_nth_char(value: str, n: int) -> int | None:
    """The end of the n-th character of ``value`` that is not a space."""
    count = 0
    for i, char in enumerate(value):
        count += char != " "
        if count == n:
            return i + 1
    return None


# --- IP addresses, validated by the ipaddress module.
_IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9A-Za-z]|\.[0-9])", _FLAGS)
_IPV6 = re.compile(
    r"""(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}
    (?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z:]|\.[0-9])""",
    _FLAGS,
)


def _judge_ip(match: re.Match[str]) -> Span | None:
    value = match.group()
    if value.strip(":") == "":  # "::" alone is punctuation far more often than an address
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return _whole(match, "IP_ADDRESS")


# --- US social security number: 3-2-4 digits with one kind of separator.
_US_SSN = re.compile(
    _BEFORE
    + r"(?P<area>[0-9]{3})(?P<s>[-. ])(?P<group>[0-9]{2})(?P=s)(?P<serial>[0-9]{4})"
    + _AFTER,
    _FLAGS,
)


def _judge_ssn(match: re.Match[str]) -> Span | None:
    if not us_ssn_valid(match["area"], match["group"], match["serial"]):
        return None
    if _glued(match.string, match.start(), match.end(), match["s"]):
        return None
    return _whole(match, "US_SSN")


# --- Mainland mobile: 1[3-9]x xxxx xxxx, optional +86 / 0086 / 86, 3-4-4 groups.
_CN_MOBILE = re.compile(
    r"""(?<![0-9A-Za-z+])(?:(?:\+|00)?86[ -]?|\(\+?86\)[ -]?)?
    1[3-9][0-9](?P<s>[ -]?)[0-9]{4}(?P=s)[0-9]{4}"""
    + _AFTER,
    _FLAGS,
)


def _judge_mobile(match: re.Match[str]) -> Span | None:
    return _whole(match, "CN_MOBILE")


# --- Mainland landline: 0 + area code (10, 2x, or 3 digits) + 7-8 digits, extension.
_AREA = r"(?:10|2[0-9]|[3-9][0-9]{2})"
_CN_LANDLINE = re.compile(
    rf"""(?<![0-9A-Za-z+])
    (?P<number>
        (?:(?:\+|00)86[ -]?(?:\((?P<a1>{_AREA})\)|(?P<a2>{_AREA}))
        |\(0(?P<a3>{_AREA})\)|0(?P<a4>{_AREA}))
        [ -]?(?P<subscriber>[2-9][0-9]{{2,3}}[ -]?[0-9]{{4}})
    )
    (?:[ ]?(?:-|转|分机|ext\.?|x)[ ]?[0-9]{{1,6}})?"""
    + _AFTER,
    _FLAGS | re.IGNORECASE,
)


def _judge_landline(match: re.Match[str]) -> Span | None:
    area = match["a1"] or match["a2"] or match["a3"] or match["a4"]
    subscriber = sum(c.isdigit() for c in match["subscriber"])
    if len(area) == 2 and subscriber == 7:
        return None  # areas 10 and 2x have 8-digit numbers
    if match["number"].isdigit() and len(match["number"]) == 12:
        return None  # bare 12 digits from 0: as often an invoice code as a phone number
    if _glued(match.string, match.start(), match.end(), " -"):
        return None
    return _whole(match, "CN_LANDLINE")


# --- Chinese passport: E or G + 8 digits, or E + letter + 7 digits. No check digit.
_CN_PASSPORT = re.compile(_BEFORE + r"(?:[EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7})" + _AFTER, _FLAGS)


def _judge_passport(match: re.Match[str]) -> Span | None:
    return _whole(match, "CN_PASSPORT")


# --- E-mail addresses.
_EMAIL = re.compile(
    r"""(?<![0-9A-Za-z._%+-])[0-9A-Za-z_%+-][0-9A-Za-z._%+-]{0,63}
    @[0-9A-Za-z-]{1,63}(?:\.[0-9A-Za-z-]{1,63})*\.[A-Za-z]{2,24}(?![0-9A-Za-z-])""",
    _FLAGS,
)


def _judge_email(match: re.Match[str]) -> Span | None:
    domain = match.group().rpartition("@")[2]
    if any(label.startswith("-") or label.endswith("-") for label in domain.split(".")):
        return None
    return _whole(match, "EMAIL")


RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer("cn_id", frozenset({"CN_ID"}), _CN_ID, _judge_cn_id, validated=True),
    Recognizer("cn_uscc", frozenset({"CN_USCC"}), _CN_USCC, _judge_uscc, validated=True),
    Recognizer("card", frozenset({"BANK_CARD", "CREDIT_CARD"}), _CARD, _judge_card, validated=True),
    Recognizer("iban", frozenset({"IBAN"}), _IBAN, _judge_iban, validated=True),
    Recognizer("ipv4", frozenset({"IP_ADDRESS"}), _IPV4, _judge_ip, validated=True, needs="."),
    Recognizer("ipv6", frozenset({"IP_ADDRESS"}), _IPV6, _judge_ip, validated=True, needs=":"),
    Recognizer("us_ssn", frozenset({"US_SSN"}), _US_SSN, _judge_ssn, validated=False),
    Recognizer("cn_mobile", frozenset({"CN_MOBILE"}), _CN_MOBILE, _judge_mobile, validated=False),
    Recognizer(
        "cn_landline", frozenset({"CN_LANDLINE"}), _CN_LANDLINE, _judge_landline, validated=False
    ),
    Recognizer(
        "cn_passport", frozenset({"CN_PASSPORT"}), _CN_PASSPORT, _judge_passport, validated=False
    ),
    Recognizer("email", frozenset({"EMAIL"}), _EMAIL, _judge_email, validated=False, needs="@"),
)

# When two findings cover the same span: the more specific entity wins.
PRIORITY: Mapping[str, int] = MappingProxyType(
    {
        "CN_ID": 100,
        "CN_USCC": 90,
        "IBAN": 85,
        "BANK_CARD": 80,
        "CREDIT_CARD": 80,
        "IP_ADDRESS": 70,
        "EMAIL": 60,
        "US_SSN": 50,
        "CN_MOBILE": 45,
        "CN_LANDLINE": 40,
        "CN_PASSPORT": 30,
        "PHONE": 20,
    }
)
ENTITIES: frozenset[str] = frozenset(PRIORITY)
