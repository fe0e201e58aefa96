"""Language identification with py3langid (langid.py's naive Bayes over byte n-grams,
97 languages; docs/improve.md says why this library).

The request log's ``language`` column is a writing system (``observe.language``): enough
for drift, not for balancing a dataset, which needs English told from French."""

from __future__ import annotations

from collections.abc import Collection
from importlib.metadata import version
from types import MappingProxyType
from typing import Any

from modelyard.errors import ModelyardError
from modelyard.lazy import lazy_module

langid = lazy_module("py3langid.langid")

UNDETERMINED = "und"
# Varieties the model tells apart that a dataset's balance counts as one language:
# Chinese written in the standard script is often classified as Wu or Cantonese.
FOLDED = MappingProxyType({"wuu": "zh", "yue": "zh", "nb": "no", "nn": "no"})


class UnknownLanguage(ModelyardError, ValueError):
    status = 400
    code = "unknown_language"
    param = "languages"


def library() -> str:
    """What the report names as the language-ID library."""
    return f"py3langid {version('py3langid')}"


class LanguageId:
    """One loaded model (about 0.7 s, 150 MB): make one per curation, not per item."""

    def __init__(self, languages: Collection[str] | None = None) -> None:
        self._model: Any = langid.LanguageIdentifier.from_model_file(
            langid.MODEL_FILE, norm_probs=True
        )
        if languages:
            unknown = sorted(set(languages) - set(self._model.labels))
            if unknown:
                raise UnknownLanguage(
                    f"unknown language code(s) {', '.join(unknown)}: use ISO 639 codes the "
                    f"model knows ({', '.join(sorted(self._model.labels)[:20])}, …)"
                )
            self._model.set_languages(sorted(set(languages)))

    def identify(self, text: str) -> str:
        """An ISO 639 code, or ``und`` for text without letters."""
        if not any(char.isalpha() for char in text):
            return UNDETERMINED
        label, _ = self._model.classify(text)
        return FOLDED.get(str(label), str(label))
