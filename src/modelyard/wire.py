"""Wire types every package's JSON API shares, strict where pydantic would coerce."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator

# An ISO 8601 date, optionally with a time: what the OpenAPI ``date``/``date-time``
# formats allow. Pydantic would also take a number of seconds since 1970, which they do not.
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_only(value: object) -> object:
    if isinstance(value, date):  # datetime too: set in code, not sent
        return value
    if not isinstance(value, str) or not _ISO.match(value):
        raise ValueError("expected an ISO 8601 date or time, such as 2026-01-31T12:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
IsoDate = Annotated[date, BeforeValidator(_iso_only)]


def _not_text_or_bool(value: object) -> object:
    # JSON's true and "5" are not integers; 5.0 is, as JSON Schema counts them.
    if isinstance(value, bool | str):
        raise ValueError("expected an integer")
    return value


# After any bounds (``Annotated[int, Field(ge=1), JSON_INTEGER]``), so that the schema
# keeps them as ``minimum``/``maximum``.
JSON_INTEGER = BeforeValidator(_not_text_or_bool)
Integer = Annotated[int, JSON_INTEGER]


def _not_text_or_bool_number(value: object) -> object:
    # JSON's true and "0.5" are not numbers; pydantic's lax mode would take both.
    if isinstance(value, bool | str):
        raise ValueError("expected a number")
    return value


JSON_NUMBER = BeforeValidator(_not_text_or_bool_number)
Number = Annotated[float, JSON_NUMBER]
