"""Phone numbers of every country, found and validated by Google's libphonenumber
(``phonenumbers``) against each country's numbering plan.

The rule (docs/pii.md): a number-like string is a ``PHONE`` when libphonenumber's matcher
finds it with leniency VALID (a real number of its country: length, prefixes, number
ranges) and it is either written internationally (``+44 …``, or an international
dialling prefix such as ``00`` or ``011``), or in a phone layout of a configured region
(an area code in parentheses, or three or more groups of digits), or a context word
(``tel``, ``phone``, ``call``, ``电话``, ``手机``, …) stands near it. A bare national digit
run (``2125550123``) or two groups are as often an order or account number: without a
context word they are left alone.

International numbers are found whatever the regions; national ones are read as numbers
of each configured region in turn. The matcher is slow next to the regular expressions of
the other recognizers (about 20 ms over a kilobyte of numbers), so it never reads a whole
text: a regular expression finds the digit runs that may be phone numbers, those that
cannot pass the rule above whatever they validate to (a bare run without a context word,
fewer than seven digits) are dropped, and the matcher reads each remaining run alone.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

DEFAULT_PHONE_REGIONS = ("US", "GB")
# A run that may be a phone number: "+" or "(" or a digit first, then digits with at most
# two characters of punctuation or space between neighbours, and an extension. Each step
# takes a digit or the separators before one, so a scan is linear in the text.
_CANDIDATE = re.compile(
    r"""(?<![0-9A-Za-z+])(?:\+[ ]?|\(\+?)?[0-9](?:[0-9]|[ ./()-]{1,2}(?=[0-9(]))*
    (?:[ ]?(?:x|ext\.?|extension|\#)[ ]?[0-9]{1,6}(?![0-9]))?""",
    re.ASCII | re.IGNORECASE | re.VERBOSE,
)
_MIN_DIGITS = 7  # the shortest numbers of a few small countries; most have more
_MAX_DIGITS = 15  # E.164's longest, country code included (an IDD prefix adds up to 3)
_MAX_RUN_DIGITS = 64
# A date first ("2024-05-06 12:30"): grouped like a phone number, and some validate as one.
_DATE = re.compile(
    r"""(?:(?:19|20)[0-9]{2}[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12][0-9]|3[01])
    |(?:0?[1-9]|[12][0-9]|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)[0-9]{2})(?![0-9])""",
    re.ASCII | re.VERBOSE,
)
_IDD = ("+", "(+", "00", "011")  # a country code follows: the number is international
_CONTEXT_BEFORE, _CONTEXT_AFTER = 40, 24
_CONTEXT = re.compile(
    r"(?<![a-z])(?:tel|phone|telephone|ph|call|calls|calling|called|mobile|cell|cellphone|fax"
    r"|contact|dial|ring|sms|whatsapp|hotline|landline|mob|tél|téléphone|telefon|telefono"
    r"|teléfono|handy)(?![a-z])"
    r"|电话|電話|手机|手機|座机|联系|聯繫|致电|拨打|撥打|呼叫|传真|傳真|热线|熱線|来电|短信",
    re.IGNORECASE,
)
_DIGIT_GROUPS = re.compile(r"[0-9]+", re.ASCII)
_EXTENSION = re.compile(r"(?:[ ]*(?:x|ext\.?|extension|#)[ ]*[0-9]+)$", re.ASCII | re.IGNORECASE)


class UnknownRegion(ValueError):
    """A region code libphonenumber does not know."""


def known_regions(regions: Collection[str]) -> tuple[str, ...]:
    """The regions, upper case, each one libphonenumber knows (``UnknownRegion`` if not)."""
    wanted = tuple(dict.fromkeys(r.strip().upper() for r in regions if r.strip()))
    unknown = [r for r in wanted if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise UnknownRegion(
            f"unknown phone region(s) {', '.join(unknown)}: use ISO 3166-1 alpha-2 codes "
            "such as US, GB, DE, CN, IN"
        )
    return wanted


@dataclass(frozen=True)
class PhoneRecognizer:
    """Finds ``PHONE`` spans; its subtype is the number's country (ISO 3166-1 alpha-2)."""

    regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    name: str = "phone"
    entities: frozenset[str] = frozenset({"PHONE"})
    validated: bool = False  # a numbering plan, not a check digit: types with one win

    def find(self, text: str) -> Iterator[tuple[str, int, int, str | None]]:
        for candidate in _CANDIDATE.finditer(text):
            for start, end in _pieces(candidate):
                raw = text[start:end]
                international = raw.startswith(_IDD)
                if _worth_matching(text, raw, start, end, international):
                    yield from self._matches(text, start, end)

    def _matches(
        self, text: str, start: int, end: int
    ) -> Iterator[tuple[str, int, int, str | None]]:
        """What the matcher finds in one digit run and the rule keeps, in the first region
        that finds something (a "+" number reads the same in every region: one pass)."""
        offset = max(0, start - 1)
        window = text[offset : end + 1]  # with the neighbours, which the matcher checks
        plus = text.startswith(("+", "(+"), start)
        for region in (self.regions[:1] if plus else self.regions) or ("ZZ",):
            found = False
            for match in PhoneNumberMatcher(window, region, leniency=Leniency.VALID):
                first, last = offset + match.start, offset + match.end
                raw = match.raw_string
                if raw.startswith(_IDD) or _near_context(text, first, last):
                    kept = True
                else:
                    kept = _phone_layout(raw) and _grouped_as_formatted(raw, match.number)
                if kept:
                    found = True
                    yield "PHONE", first, last, _country(match.number)
            if found:
                return


def _pieces(candidate: re.Match[str]) -> list[tuple[int, int]]:
    """The run, or its parts when it is a list of numbers written with dashes or dots and
    one space between them ("212-555-0123 212-555-0199")."""
    parts = candidate.group().split(" ")
    if len(parts) < 2 or not all("-" in part or "." in part for part in parts):
        return [candidate.span()]
    spans: list[tuple[int, int]] = []
    position = candidate.start()
    for part in parts:
        spans.append((position, position + len(part)))
        position += len(part) + 1
    return spans


def _worth_matching(text: str, raw: str, start: int, end: int, international: bool) -> bool:
    """Whether a digit run could pass the rule, before the matcher says if it is valid."""
    body = _EXTENSION.sub("", raw)
    digits = sum(c.isdigit() for c in body)
    if digits < _MIN_DIGITS or _DATE.match(body):
        return False
    if digits > (_MAX_DIGITS + 3 if international else _MAX_DIGITS):
        # Several numbers in one run ("58.74.121.78 (212) 555-0123"), which the matcher
        # splits; or one long number in groups of a width (a card, an account): none. A
        # run of more than a few numbers is punctuation noise, never read (a bound on the
        # matcher's work).
        return digits <= _MAX_RUN_DIGITS and not _uniform(body)
    return international or _phone_layout(body) or _near_context(text, start, end)


def _uniform(body: str) -> bool:
    """Groups of one width (the last may be shorter) with one kind of separator."""
    widths = [len(group) for group in _DIGIT_GROUPS.findall(body)]
    separators = set(_DIGIT_GROUPS.sub("", body))
    return len(separators) <= 1 and all(w == widths[0] for w in widths[:-1])


def _country(number: phonenumbers.PhoneNumber) -> str | None:
    """The number's region; only a country code that several regions share (+1, +44, +7)
    needs the slower look-up by number ranges."""
    regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    if len(regions) == 1:
        return str(regions[0])
    return phonenumbers.region_code_for_number(number)


def _grouped_as_formatted(raw: str, number: phonenumbers.PhoneNumber) -> bool:
    """Whether the groups of a national number are those its country writes, or coarser
    ("212-555-0123", "2125550123" and "212 5550123" for "(212) 555-0123"), so that an
    ISBN or a reference in groups of its own ("9-782-73811-5") is not one. A national
    prefix before the number ("1-800-...", "0 161 ...") may stand apart."""
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    significant = len(phonenumbers.national_significant_number(number))
    written = {cut for cut in _cuts(raw) if cut < significant}
    return written <= _cuts(national)


def _cuts(raw: str) -> set[int]:
    """Where the digit groups of a number end, counted in digits from its end."""
    groups = _DIGIT_GROUPS.findall(_EXTENSION.sub("", raw))
    cuts: set[int] = set()
    counted = 0
    for group in reversed(groups[1:]):
        counted += len(group)
        cuts.add(counted)
    return cuts


def _phone_layout(raw: str) -> bool:
    """An area code in parentheses, or three or more groups of digits (an extension aside)."""
    body = _EXTENSION.sub("", raw)
    return body.startswith("(") or len(_DIGIT_GROUPS.findall(body)) >= 3


def _near_context(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _CONTEXT_BEFORE) : start]
    after = text[end : end + _CONTEXT_AFTER]
    return _CONTEXT.search(before) is not None or _CONTEXT.search(after) is not None
