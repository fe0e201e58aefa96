"""Finds English a reader sees on a page that should be in another language: the visible
text of a rendered page, less what is not prose (code, identifiers, content marked
``translate="no"`` or ``lang="en"``), and less the words every language writes as they are."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Words a Chinese page writes in Latin letters too: product and format names, units,
# statistics' names, keys of the keyboard, and the language switch's own name.
ALLOWED = frozenset(
    word.lower()
    for word in (
        *("modelyard", "JSON", "JSONL", "CSV", "YAML", "API", "URL", "URLs", "HTTP", "HTTPS"),
        *("OTLP", "PII", "GGUF", "ShareGPT", "OpenAI", "Redis", "SQLite", "PostgreSQL", "UTC"),
        *("TTFT", "SHA", "sha256", "CI", "ms", "MiB", "Wh", "Cookie", "HttpOnly", "Secure"),
        *("SameSite", "Lax", "Webhook", "Enter", "Shift", "Ctrl", "Esc", "Evidently"),
        *("fairlearn", "Optuna", "TPE", "llama", "cpp", "safetensors", "pickle", "schema"),
        *("token", "bootstrap", "McNemar", "CUPED", "p50", "p95", "English", "ID", "int8"),
        *("Plotly", "production"),
    )
)
# Elements whose text is never prose to translate.
CODE = frozenset({"code", "pre", "kbd", "samp", "script", "style", "textarea", "template"})
# Elements a page only uses for its own chrome (navigation, headings of columns, buttons,
# labels): one English word there is already an untranslated string.
CHROME = frozenset({"nav", "th", "button", "label", "summary", "legend"})
VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)
SKIPPED_CLASSES = frozenset({"mono", "tag"})  # identifiers and values of the API
APOSTROPHES = "'\u2019"
WORD = re.compile(rf"[A-Za-z](?:[A-Za-z{APOSTROPHES}-]*[A-Za-z])?")  # "fine-tune": one word
RUN = re.compile(rf"{WORD.pattern}(?:[ ,/]+{WORD.pattern})+")
# Attributes whose values a reader sees.
SHOWN = ("placeholder", "title", "data-confirm", "aria-label")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool]] = []  # tag, skipped, chrome
        self.found: list[str] = []
        self.shown: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        self.shown += [value for name, value in attrs if name in SHOWN and value]
        if tag in VOID:
            return
        classes = set((given.get("class") or "").split())
        skipped = (
            tag in CODE
            or given.get("translate") == "no"
            or (given.get("lang") or "").startswith("en")
            or bool(classes & SKIPPED_CLASSES)
            or (tag == "option" and "value" in given)  # a choice's value: data or a label
            or (self.stack and self.stack[-1][1])
        )
        chrome = tag in CHROME or bool(self.stack and self.stack[-1][2])
        self.stack.append((tag, bool(skipped), chrome))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        skipped = bool(self.stack and self.stack[-1][1])
        chrome = bool(self.stack and self.stack[-1][2])
        if skipped or not data.strip():
            return
        self.found += english_runs(data)
        if chrome and WORD.fullmatch(data.strip()) and _english(data.strip()):
            self.found.append(data.strip())  # a column's heading, a button: nothing but English


def _english(word: str) -> bool:
    return len(word) > 1 and word.lower() not in ALLOWED


def english_runs(text: str) -> list[str]:
    """Runs of words with two or more English words (not one letter, not allowed) in them."""
    return [
        run.group()
        for run in RUN.finditer(text)
        if sum(_english(word) for word in WORD.findall(run.group())) >= 2
    ]


def untranslated(html: str) -> list[str]:
    """The English runs in ``html``'s visible text, the single English words in its chrome,
    and the English runs in the placeholders, titles and confirmations a reader sees."""
    parser = _Text()
    parser.feed(html)
    return parser.found + [run for value in parser.shown for run in english_runs(value)]
