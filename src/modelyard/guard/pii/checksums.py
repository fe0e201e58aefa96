"""Check digits of the identifiers the detector validates: Luhn, GB 11643 (resident ID),
GB 32100 (unified social credit code), ISO 13616 (IBAN), and the US SSN's number rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

# GB 11643 / ISO 7064 MOD 11-2: weight of position i is 2^(17-i) mod 11.
_CN_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))
_CN_ID_CHECK = "10X98765432"  # indexed by the weighted sum mod 11
# First two digits of a resident ID: provinces, Taiwan, Hong Kong, Macau, Taiwan residents.
CN_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)

# GB 32100-2015: 31 characters, no I, O, Z, S, V; weight of position i is 3^i mod 31.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = MappingProxyType({c: i for i, c in enumerate(USCC_ALPHABET)})
_USCC_WEIGHTS = tuple(3**i % 31 for i in range(17))

# ISO 13616 IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: Mapping[str, int] = MappingProxyType({
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
})  # fmt: skip


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` Luhn-valid."""
    total = 0
    for i, char in enumerate(reversed(payload)):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def luhn_valid(digits: str) -> bool:
    return len(digits) > 1 and digits.isdigit() and luhn_check_digit(digits[:-1]) == digits[-1]


def cn_id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11]


def cn_id_birth_date(value: str) -> date | None:
    """The birth date in positions 7-14 of a resident ID, or None when it is no date."""
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def cn_id_valid(value: str, today: date | None = None) -> bool:
    """An 18-character resident ID: region, a real birth date not in the future, check char."""
    value = value.upper()
    if len(value) != 18 or not value[:17].isdigit() or value[0] == "0":
        return False
    if int(value[:2]) not in CN_PROVINCES and value[0] != "9":  # 9: foreigners, since 2023
        return False
    born = cn_id_birth_date(value)
    if born is None or born.year < 1800 or born > (today or date.today()):
        return False
    return cn_id_check_char(value[:17]) == value[17]


def resembles_cn_id(digits: str) -> bool:
    """A resident ID with a typo more likely than a card number or a credit code: a
    province code and, for 17-18 digits, a birth year where an ID has it; for 19 digits (an
    ID with a digit too many) a whole birth date."""
    if not 17 <= len(digits) <= 19 or not digits.isdigit() or int(digits[:2]) not in CN_PROVINCES:
        return False
    if len(digits) == 19:
        return cn_id_birth_date(digits) is not None and 1900 <= int(digits[6:10]) < 2100
    return 1800 <= int(digits[6:10]) < 2100


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[-total % 31]


def uscc_valid(value: str) -> bool:
    """An 18-character unified social credit code: alphabet, region digits, check char."""
    if len(value) != 18 or any(c not in _USCC_VALUES for c in value):
        return False
    if not value[2:8].isdigit() or value[0] == "0":
        return False
    return uscc_check_char(value[:17]) == value[17]


def _iban_number(rearranged: str) -> int:
    return int("".join(str(int(c, 36)) for c in rearranged))


def iban_check_digits(country: str, bban: str) -> str:
    return f"{98 - _iban_number(bban + country + '00') % 97:02d}"


def iban_valid(value: str) -> bool:
    """A compact, upper-case IBAN: known country, its length, mod 97 == 1."""
    country = value[:2]
    if IBAN_LENGTHS.get(country) != len(value) or not value[2:4].isdigit():
        return False
    if not value.isalnum() or not value.isascii():
        return False
    return _iban_number(value[4:] + value[:4]) % 97 == 1


def us_ssn_valid(area: str, group: str, serial: str) -> bool:
    """The SSA's rules: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )
