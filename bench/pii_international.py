"""The international set of bench/pii.py, generated from a seed in English sentences (Faker
en_US around each value):

- payment cards of every scheme the detector names, at each length the scheme issues, bare,
  in groups of four (spaces or dashes) or in Amex's and Diners' 4-6-5 and 4-6-4, with
  a right Luhn digit; the IIN prefixes below are the networks' published ranges, written
  out here independently of ``modelyard.guard.pii.cards``;
- phone numbers of every country libphonenumber has metadata for: a real number's layout
  (the region's example number with its last digits redrawn until the number is valid
  again) in international (``+44 20 7946 0958``), E.164 (``+442079460958``) or ``00``
  format, and for the default regions (US, GB) also national: formatted, bare after a
  context word, and bare without one (which the detector leaves alone on purpose: misses
  counted);
- numbers that are none of these and must not be reported: order numbers, Unix times,
  ISO dates and times, ISBN-10 and ISBN-13 with right check digits, 16 digits with a wrong
  Luhn digit, Luhn-valid 12-19 digits without a card IIN, prices, versions, coordinates.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import phonenumbers
from faker import Faker
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from modelyard.guard.pii.checksums import luhn_check_digit

Gold = tuple[str, int, int, str | None]  # entity, start, end, subtype
Labelled = tuple[str, list[Gold]]

# scheme, entity, IIN prefixes, lengths
CARD_SCHEMES: tuple[tuple[str, str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("visa", "CREDIT_CARD", ("4",), (13, 16, 19)),
    ("mastercard", "CREDIT_CARD", ("51", "53", "55", "2221", "2500", "2720"), (16,)),
    ("amex", "CREDIT_CARD", ("34", "37"), (15,)),
    ("discover", "CREDIT_CARD", ("6011", "644", "649", "659"), (16, 19)),
    ("diners", "CREDIT_CARD", ("300", "305", "36", "38"), (14, 16)),
    ("jcb", "CREDIT_CARD", ("3528", "3566", "3589"), (16, 19)),
    ("maestro", "CREDIT_CARD", ("5018", "5020", "5038", "6304", "6759", "6763"), (12, 13, 16, 19)),
    ("unionpay", "BANK_CARD", ("62",), (16, 17, 18, 19)),
    ("mir", "CREDIT_CARD", ("2200", "2202", "2204"), (16,)),
    ("rupay", "CREDIT_CARD", ("6070", "508"), (16,)),
    ("verve", "CREDIT_CARD", ("506099", "506150", "507900"), (16, 19)),
    ("dankort", "CREDIT_CARD", ("5019",), (16,)),
    ("troy", "CREDIT_CARD", ("9792",), (16,)),
)
CARD_LABELS = ["card ", "Card number: ", "please charge ", "my Visa is ", "pay with ", ""]
PHONE_LABELS = ["call me at ", "phone: ", "Tel. ", "reach me on ", "mobile ", "WhatsApp "]
NATIONAL_REGIONS = ("US", "GB")  # the detector's default phone regions
_FILL = "0123456789"


class International:
    """Cards, phones and negatives from one seeded random source."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)

    def digits(self, n: int) -> str:
        return "".join(self.random.choice(_FILL) for _ in range(n))

    def sentence(self) -> str:
        return str(self.fake.sentence(nb_words=self.random.randint(4, 10)))

    def card(self, prefix: str, length: int) -> str:
        payload = prefix + self.digits(length - len(prefix) - 1)
        number = payload + luhn_check_digit(payload)
        layout = self.random.choice(["bare", "space", "dash"])
        if layout == "bare":
            return number
        separator = " " if layout == "space" else "-"
        widths = {15: (4, 6, 5), 14: (4, 6, 4)}.get(length)
        if widths is not None and self.random.random() < 0.7:
            cuts = [0, widths[0], widths[0] + widths[1], length]
        else:
            cuts = [*range(0, length, 4), length]
        return separator.join(number[a:b] for a, b in itertools.pairwise(cuts))

    def phone(self, region: str) -> phonenumbers.PhoneNumber | None:
        """A valid number of ``region`` with the layout of its example number."""
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = str(example.national_number)
            redrawn = min(4, len(national) - 2)
            for _ in range(30):
                candidate = national[:-redrawn] + self.digits(redrawn)
                number = phonenumbers.parse(f"+{example.country_code}{candidate}", None)
                if phonenumbers.is_valid_number(number) and (
                    phonenumbers.region_code_for_number(number) == region
                ):
                    return number
        return None

    def written(self, number: phonenumbers.PhoneNumber, region: str) -> tuple[str, str]:
        """The number as text, and the label before it."""
        label = self.random.choice(PHONE_LABELS + [""] * 3)
        if region in NATIONAL_REGIONS and self.random.random() < 0.5:
            national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            layout = self.random.choice(["formatted", "formatted", "bare+context", "bare"])
            if layout == "formatted":
                return national, label
            bare = "".join(c for c in national if c.isdigit())
            if layout == "bare":
                return bare, ""
            return bare, self.random.choice(PHONE_LABELS)
        layout = self.random.choice(["international", "international", "e164", "00"])
        if layout == "e164":
            return phonenumbers.format_number(number, PhoneNumberFormat.E164), label
        text = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        return (text if layout == "international" else "00" + text[1:]), label

    def negative(self) -> str:
        makers: list[Callable[[], str]] = [
            lambda: f"Order #{self.digits(10)} has shipped",
            lambda: f"order {self.random.randint(10**11, 10**12 - 1)} confirmed",
            lambda: f"timestamp {self.random.randint(1_500_000_000, 1_800_000_000)}",
            lambda: f"ts={self.random.randint(1_500_000_000_000, 1_800_000_000_000)}",
            lambda: f"at {self.fake.date_time().isoformat()}Z",
            lambda: f"on {self.fake.date()} {self.fake.time()}",
            lambda: f"ISBN {self.isbn13()}",
            lambda: f"ISBN {self.isbn10()}",
            lambda: f"ref {self.non_luhn(16)}",
            lambda: f"account {self.luhn_without_iin()}",
            lambda: f"total ${self.random.randint(1000, 9_999_999):,}.{self.digits(2)}",
            lambda: (
                f"version {self.random.randint(1, 30)}.{self.random.randint(0, 9)}.{self.digits(2)}"
            ),
            lambda: f"at {self.fake.latitude()}, {self.fake.longitude()}",
        ]
        return self.random.choice(makers)()

    def isbn13(self) -> str:
        body = self.random.choice(["978", "979"]) + self.digits(9)
        check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
        return f"{body[:3]}-{body[3]}-{body[4:8]}-{body[8:]}-{check}"

    def isbn10(self) -> str:
        body = self.digits(9)
        check = sum((10 - i) * int(c) for i, c in enumerate(body)) % 11
        last = "X" if (11 - check) % 11 == 10 else str((11 - check) % 11)
        return f"{body[0]}-{body[1:4]}-{body[4:9]}-{last}"

    def non_luhn(self, length: int) -> str:
        payload = self.random.choice("3456") + self.digits(length - 2)
        right = luhn_check_digit(payload)
        return payload + self.random.choice([d for d in _FILL if d != right])

    def luhn_without_iin(self) -> str:
        payload = self.random.choice(["1", "7", "80", "87"]) + self.digits(
            self.random.randint(10, 16)
        )
        return payload + luhn_check_digit(payload)


def international_set(per_scheme: int, negatives: int, seed: int) -> tuple[list[Labelled], int]:
    """Labelled texts (cards, one or two phones of every region, negatives), and the number
    of negatives among them."""
    make = International(seed)
    values: list[tuple[str | None, str, str, str | None]] = []  # entity, text, label, subtype
    for scheme, entity, prefixes, lengths in CARD_SCHEMES:
        for i in range(per_scheme):
            number = make.card(prefixes[i % len(prefixes)], lengths[i % len(lengths)])
            values.append((entity, number, make.random.choice(CARD_LABELS), scheme))
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for _ in range(4 if region in NATIONAL_REGIONS else 1):
            number = make.phone(region)
            if number is not None:
                text, label = make.written(number, region)
                values.append(("PHONE", text, label, region))
    for _ in range(negatives):
        values.append((None, make.negative(), "", None))
    texts: list[Labelled] = []
    for entity, value, label, subtype in values:
        text = make.sentence() + " " + label
        gold = [(entity, len(text), len(text) + len(value), subtype)] if entity else []
        texts.append(
            (text + value + make.random.choice([". ", ", ", "; ", " "]) + make.sentence(), gold)
        )
    make.random.shuffle(texts)
    return texts, negatives
