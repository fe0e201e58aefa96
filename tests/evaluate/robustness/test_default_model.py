"""A small robustness suite on the real default model (SmolLM2 through llama.cpp), by the
CLI command the docs give, on a shipped task over public data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.evaluate.runs import EvalRuns
from modelyard.store import open_store

pytestmark = pytest.mark.model
TASK = Path(__file__).parents[3] / "tasks" / "poem_sentiment.yaml"
ITEMS = 4


def test_a_robustness_suite_on_the_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_DEFAULT_MODEL", "smollm2")
    args = ["eval", "robustness", str(TASK), "-m", "default", "-p", "casing"]
    ran = CliRunner().invoke(main, [*args, "--limit", str(ITEMS), "--json"])
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output)
    assert report["clean"]["versions"] == ["default@1"]
    rows = {row["perturbation"]: row for row in report["perturbations"]}
    assert list(rows) == ["casing"]
    store = open_store(Settings().store_url)
    try:
        runs = EvalRuns(store)
        clean = runs.items(report["clean"]["id"])
        upper = runs.items(rows["casing"]["run"])
    finally:
        store.close()
    assert [a.item_index for a in upper] == [a.item_index for a in clean]
    for u, c in zip(upper, clean, strict=True):  # the verse upper-cased, the template not
        verse = c.question.removeprefix("Verse: ").removesuffix("\nSentiment:")
        assert u.question == f"Verse: {verse.upper()}\nSentiment:"
    assert [a.reference for a in upper] == [a.reference for a in clean]
    for row in rows.values():
        assert row["items"] == ITEMS and row["errors"] == 0
        d = row["differences"]["accuracy"]
        assert d["ci_low"] <= d["difference"] <= d["ci_high"]
        assert d["difference"] == pytest.approx(d["candidate"] - d["baseline"])
