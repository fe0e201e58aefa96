"""The console's languages: a gettext catalogue (Babel) per language, compiled when the app
starts, and which language a request gets (its cookie, else its ``Accept-Language``)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
COOKIE = "modelyard_language"
SOURCE = "en"  # the language the templates and scripts are written in
# Each language: its catalogue's directory, its BCP 47 tag and its own name.
LANGUAGES = (("en", "en", "English"), ("zh_Hans", "zh-Hans", "简体中文"))
# Chinese written in these places is Traditional: a simplified console is not their match.
TRADITIONAL = frozenset({"TW", "HK", "MO"})


def N_(msgid: str) -> str:
    """Marks ``msgid`` for extraction; it is translated where it is shown."""
    return msgid


def pN_(context: str, msgid: str) -> str:
    """Marks ``msgid`` in ``context`` for extraction; shown with ``pgettext(context, msgid)``."""
    del context
    return msgid


@dataclass(frozen=True)
class Phrase:
    """A text translated when a page is rendered: ``msgid`` with ``{name}`` fields."""

    msgid: str
    args: Mapping[str, object] = field(default_factory=dict)

    def translated(self, translations: Translations) -> str:
        return translations.gettext(self.msgid).format(**self.args)


def phrase(msgid: str, **args: object) -> Phrase:
    return Phrase(msgid, args)


@dataclass(frozen=True)
class Language:
    code: str
    tag: str
    name: str
    locale: Locale
    translations: Translations
    # The translations of the messages the console's scripts show, for the page to hand them.
    script_messages: Mapping[str, str]

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self.locale)


def load_languages(directory: Path = LOCALE_DIR) -> dict[str, Language]:
    """Every language's catalogue, read from its ``.po`` and compiled in memory."""
    return {code: _load(directory, code, tag, name) for code, tag, name in LANGUAGES}


def _load(directory: Path, code: str, tag: str, name: str) -> Language:
    path = directory / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as file:
        catalog = read_po(file, locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Language(
        code=code,
        tag=tag,
        name=name,
        locale=Locale.parse(code),
        translations=Translations(compiled, domain=DOMAIN),
        script_messages=_script_messages(catalog),
    )


def _script_messages(catalog: Catalog) -> dict[str, str]:
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id
        and message.string
        and not message.fuzzy
        and any(place.endswith(".js") for place, _ in message.locations)
    }


def negotiate(accept_language: str | None) -> str:
    """The language of the first range the header prefers that the console has (by quality,
    then order), else the source language."""
    for tag in _preferred(accept_language or ""):
        code = _match(tag)
        if code is not None:
            return code
    return SOURCE


def _preferred(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue  # a malformed range is ignored, as RFC 9110 lets a server do
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def _match(tag: str) -> str | None:
    try:
        locale = Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return None  # "*", private use or a language Babel does not know
    if locale.language == "en":
        return "en"
    if locale.language == "zh" and locale.script != "Hant" and locale.territory not in TRADITIONAL:
        return "zh_Hans"
    return None


def chosen(cookie: str | None, accept_language: str | None) -> str:
    """The language a request gets: the one its cookie names (the header's switch), else the
    one its ``Accept-Language`` negotiates."""
    if cookie in {code for code, _, _ in LANGUAGES}:
        return str(cookie)
    return negotiate(accept_language)
