"""The built-in `classifier` trainer: a study searches a distilled student's
regularisation on five banking77 intents, one of them five times as common in training as
the others. A lightly regularised head (large C) is right on most searched texts and a
crushed one (C = 0.0001) answers the majority intent, so the search must prefer the large
C; every trial is a version of the route with its lineage, and the best
is confirmed against production on texts neither its training nor the search saw.

Data: ../shared/datasets/banking77_test.csv (PolyAI, CC BY 4.0)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.improve.tune.students import builtin_trainers
from tests.conftest import app_client, register_scripted
from tests.improve.banking77 import banking77_rows
from tests.improve.tune.words import new_study, runner

pytestmark = pytest.mark.anyio
INTENTS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed")
SMALL_C, LARGE_C = 0.0001, 10.0


def items() -> list[dict[str, Any]]:
    """Per intent 5 texts searched (dev) and 5 held out (test); to train on, 30 of the
    first intent and 6 of each other. A crushed head (tiny C) keeps little more than the
    intercepts, which name the majority intent: right on a fifth of the balanced dev."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in banking77_rows():
        if row["category"] in INTENTS:
            by_intent[row["category"]].append(row["text"])
    out = []
    for intent, texts in sorted(by_intent.items()):
        train = 30 if intent == INTENTS[0] else 6
        for index, text in enumerate(texts[: train + 10]):
            split = "train" if index < train else "dev" if index < train + 5 else "test"
            out.append({"text": text, "label": intent, "split": split})
    return out


async def test_a_study_searches_a_distilled_student_s_regularisation(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", default_embedding_model="minilm")
    settings.ensure_home()
    data = items()
    async with app_client(settings) as api:
        truth = {item["text"]: item["label"] for item in data}
        register_scripted(api.services.registry, "intents", replies_by_message=truth)
        DatasetService(api.services.store).register_items("intents5", data, {"kind": "tests"}, "t")
        await api.reload_routes()
        body = {
            "task": {
                "name": "intents5",
                "dataset": {"registered": "intents5", "split": "dev"},
                "prompt": {"template": "{{ text }}"},
                "target": "label",
                "filters": ["strip"],
                "metrics": [{"name": "exact_match"}],
            },
            "model": "intents",
            "trials": 4,
            "startup_trials": 2,
            "seed": 0,
            "holdout_split": "test",
            "space": {
                "student": {
                    "trainer": "classifier",
                    "options": {
                        "dataset": "intents5",
                        "model": "intents",
                        "input_field": "text",
                        "label_field": "label",
                    },
                    "params": {"c": {"type": "categorical", "choices": [SMALL_C, LARGE_C]}},
                }
            },
        }
        study_id = new_study(api, body)
        trainers = builtin_trainers(api.services.store, settings.home)
        study = await runner(api, trainers=trainers).run(study_id)

    assert study.status == "done", study.message
    tried = {trial.params["student.c"] for trial in study.trials}
    assert tried == {SMALL_C, LARGE_C}  # seed 0 tries both
    models = [trial.settings.model for trial in study.trials]
    assert models == [f"intents@{n}" for n in range(2, 6)]  # a version per trial
    for trial in study.trials:
        assert trial.value is not None
        if trial.params["student.c"] == LARGE_C:
            assert trial.value >= 0.7
        else:
            assert trial.value <= 0.4
    best = study.trials[study.best_trial or 0]
    assert best.params["student.c"] == LARGE_C
    confirmed = study.confirmation
    assert confirmed is not None and confirmed.candidate_model == best.settings.model
    assert confirmed.baseline_model == "intents:production"
    version = api.services.registry.version("intents", int(best.settings.model.split("@")[1]))
    assert version.engine_kind == "classifier"
    assert f"tune study {study_id}, trial {best.number}" in version.notes
