"""Perturbations: seeded and deterministic, each changing what it says and nothing else,
OpenCC really converting, and never the reference."""

from __future__ import annotations

import unicodedata

import pytest
from pydantic import ValidationError

from modelyard.evaluate.robustness.apply import ItemPerturber, fields_to_perturb
from modelyard.evaluate.robustness.perturb import TextPerturber, homoglyph_table
from modelyard.evaluate.robustness.spec import Perturbation, parse_perturbation
from modelyard.evaluate.tasks import Task, TaskError

pytestmark = pytest.mark.anyio
TEXT = (
    "Which river flows through Paris, and how long is it? It is the Seine; about 777 km "
    "long, from Burgundy to the English Channel."
)
ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060"}


def perturb(spec: str, text: str = TEXT, rate: float = 0.3, seed: int = 0, index: int = 0) -> str:
    return TextPerturber(parse_perturbation(spec, rate, seed)).text(text, index, "question")


@pytest.mark.parametrize(
    "spec",
    [
        "typos",
        "casing:random",
        "punctuation:add",
        "whitespace",
        "confusables",
        "confusables:zero_width",
        "confusables:full_width",
    ],
)
def test_the_seed_decides_the_change(spec: str) -> None:
    first = perturb(spec)
    assert first != TEXT
    assert perturb(spec) == first  # the same seed, item and field: the same text
    assert perturb(spec, seed=1) != first
    assert perturb(spec, index=1) != first  # each item draws its own changes


def test_typos_hit_only_keys_and_follow_the_rate() -> None:
    chinese = "巴黎的河流叫什么名字？"
    assert perturb("typos", chinese, rate=1.0) == chinese
    few, many = perturb("typos", rate=0.05), perturb("typos", rate=0.5)
    changed = sum(a != b for a, b in zip(few, TEXT, strict=False))
    assert 0 < changed < sum(a != b for a, b in zip(many, TEXT, strict=False))


def test_casing_and_punctuation() -> None:
    assert perturb("casing") == TEXT.upper()
    assert perturb("casing:lower") == TEXT.lower()
    removed = perturb("punctuation")
    assert removed == "".join(c for c in TEXT if c not in ",?;.")
    chinese = perturb("punctuation", "文章：巴黎。问题：哪条河？")
    assert chinese == "文章巴黎问题哪条河"
    added = perturb("punctuation:add", rate=0.5)
    assert len(added) > len(TEXT)
    assert "".join(c for c in added if c not in ",.;:!?") == removed


def test_whitespace_changes_only_whitespace() -> None:
    spread = perturb("whitespace", rate=0.5)
    assert spread != TEXT and spread.startswith("  ")
    assert "".join(spread.split()) == "".join(TEXT.split())


def test_confusables_look_alike_and_fold_back() -> None:
    wide = perturb("confusables:full_width", rate=0.5)
    assert wide != TEXT and unicodedata.normalize("NFKC", wide) == TEXT
    hidden = perturb("confusables:zero_width", rate=0.5)
    assert "".join(c for c in hidden if c not in ZERO_WIDTH) == TEXT
    spoofed = perturb("confusables", rate=0.5)
    table = homoglyph_table()
    assert table["a"] and all(
        unicodedata.name(c).startswith("CYRILLIC") or unicodedata.name(c).startswith("GREEK")
        for c in table["o"]
    )
    swapped = [(a, b) for a, b in zip(TEXT, spoofed, strict=True) if a != b]
    assert swapped and all(b in table[a] for a, b in swapped)


def test_opencc_converts_simplified_to_traditional_and_back() -> None:
    simplified = "头发和发展都很重要，这是简体中文。"
    traditional = perturb("opencc", simplified)
    assert traditional == "頭髮和發展都很重要，這是簡體中文。"  # 发 becomes 髮 or 發 by the phrase
    assert perturb("opencc:t2s", traditional) == simplified
    # Taiwan's and Hong Kong's variants differ from the standard where OpenCC says so.
    assert (perturb("opencc", "里面"), perturb("opencc:s2tw", "里面")) == ("裏面", "裡面")


def test_a_perturbation_is_checked() -> None:
    with pytest.raises(ValidationError, match="has no mode 'sideways'"):
        parse_perturbation("casing:sideways")
    with pytest.raises(ValidationError, match="names the route"):
        Perturbation(kind="paraphrase")
    with pytest.raises(ValidationError, match="take no model"):
        Perturbation(kind="typos", model="rewriter")
    with pytest.raises(ValidationError):
        parse_perturbation("typos", rate=0)
    assert parse_perturbation("paraphrase@rewriter").label == "paraphrase@rewriter"
    assert parse_perturbation("opencc:s2hk").label == "opencc:s2hk"
    assert parse_perturbation("casing").chosen_mode == "upper"


def task(
    perturbation: dict[str, object] | None, template: str = "Q: {{ q }} ({{ topic }})"
) -> Task:
    return Task.model_validate(
        {
            "name": "t",
            "dataset": {"path": "x.jsonl"},
            "prompt": {"template": template},
            "target": "a",
            "metrics": [{"name": "exact_match"}],
            "perturbation": perturbation,
        }
    )


async def test_items_keep_their_reference_and_fields_are_checked() -> None:
    items = [{"q": "What is it?", "topic": "rivers", "a": "The Seine.", "n": 3}]
    p = task({"kind": "casing"})
    assert fields_to_perturb(p, items) == ["q", "topic"]
    perturber = ItemPerturber.for_task(p, items)
    assert perturber is not None
    changed = await perturber.perturb(None, items[0], 0)  # type: ignore[arg-type]
    assert changed == {"q": "WHAT IS IT?", "topic": "RIVERS", "a": "The Seine.", "n": 3}
    assert items[0]["q"] == "What is it?"  # the item itself is untouched
    only_q = task({"kind": "casing", "fields": ["q"]})
    assert fields_to_perturb(only_q, items) == ["q"]
    with pytest.raises(TaskError, match="'a' is the target"):
        fields_to_perturb(task({"kind": "casing", "fields": ["q", "a"]}), items)
    with pytest.raises(TaskError, match="no field\\(s\\) question"):
        fields_to_perturb(task({"kind": "casing", "fields": ["question"]}), items)
    with pytest.raises(TaskError, match="uses no field but the target"):
        fields_to_perturb(task({"kind": "casing"}, template="{{ a }}"), items)
    assert ItemPerturber.for_task(task(None), items) is None
