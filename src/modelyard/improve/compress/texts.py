"""The texts a variant is measured on, from a registered dataset version or the request."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.evaluate.datasets import DatasetService
from modelyard.improve.compress.errors import InvalidCompression
from modelyard.improve.compress.protocol import TextSource
from modelyard.improve.distil.prompts import INPUT_FIELDS
from modelyard.registry.protocol import version_name
from modelyard.store import Store


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    labels: list[str] | None  # a label per text, when the source names a label field
    source: str  # where they came from, as the table says it


def read_texts(store: Store, source: TextSource) -> Texts:
    """The first ``limit`` non-empty texts of the source (InvalidCompression when none)."""
    if source.texts is not None:
        given = [text for text in source.texts if text.strip()][: source.limit]
        if not given:
            raise InvalidCompression("texts holds no text that is not blank", param="texts")
        return Texts(given, None, f"{len(given)} texts given")
    reference = str(source.dataset)
    name, _, number = reference.partition("@")
    datasets = DatasetService(store)
    dataset = datasets.get(name, int(number) if number else None)
    items = datasets.items(dataset.name, dataset.version)
    field = source.field or _text_field(items[0] if items else {})
    texts: list[str] = []
    labels: list[str] = []
    for item in items:
        text = item.get(field)
        if not isinstance(text, str) or not text.strip():
            continue
        if source.label_field is not None:
            label = item.get(source.label_field)
            if label is None:
                continue
            labels.append(str(label))
        texts.append(text)
        if len(texts) == source.limit:
            break
    where = version_name(dataset.name, dataset.version)
    if not texts:
        raise InvalidCompression(
            f"the items of {where} have no text in '{field}'"
            + (f" with a '{source.label_field}'" if source.label_field else ""),
            param="texts.field",
        )
    return Texts(texts, labels if source.label_field else None, f"{where}, field {field}")


def _text_field(item: dict[str, object]) -> str:
    for name in INPUT_FIELDS:
        if isinstance(item.get(name), str):
            return name
    raise InvalidCompression(
        f"the items have none of the fields {', '.join(INPUT_FIELDS)}: name the text's field "
        "(texts.field)",
        param="texts.field",
    )
