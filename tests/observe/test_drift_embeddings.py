"""Prompt-embedding drift: a classifier on embeddings, added to the route's report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelyard.observe.drift import embedding_drift
from tests.conftest import AppClient
from tests.observe.test_drift_reports import records

pytestmark = pytest.mark.anyio


def test_shifted_embeddings_drift_and_same_ones_do_not() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, (200, 16)).tolist()
    same = rng.normal(0, 1, (150, 16)).tolist()
    shifted = (rng.normal(0, 1, (150, 16)) + np.eye(16)[0] * 1.5).tolist()
    moved = embedding_drift("e", reference, shifted)
    assert moved.drifted and moved.statistic > 0.8 and moved.kind == "embedding"
    steady = embedding_drift("e", reference, same)
    assert not steady.drifted and steady.statistic < 0.62
    with pytest.raises(ValueError, match="at least 2 vectors"):
        embedding_drift("e", reference, [[0.0] * 16])
    with pytest.raises(ValueError, match="same dimensions"):
        embedding_drift("e", [[0.0, 1.0], [1.0, 0.0]], [[0.0], [1.0]])


async def fake_embed(texts: list[str]) -> list[list[float]]:
    """Stands in for an embedding model: Chinese and English prompts land apart."""
    rng = np.random.default_rng(len(texts))
    return [
        [sum("\u4e00" <= c <= "\u9fff" for c in t) / max(len(t), 1), *rng.normal(0, 0.3, 7)]
        for t in texts
    ]


async def test_reports_carry_prompt_embedding_drift(api: AppClient) -> None:
    now = datetime.now(UTC)
    for row in [
        *records(
            "support", now - timedelta(days=8, hours=-1), 7 * 24 - 2, 100, chinese=False, seed=1
        ),
        *records("support", now - timedelta(hours=23), 22, 60, chinese=True, seed=2),
    ]:
        api.services.request_log.submit(row)
    await api.logged()
    # No embedding model in the tests' store: the report leaves the column out, and says why
    # only in the log.
    plain = (await api.post("/api/drift/run", json={"route": "support"})).json()["data"][0]
    assert "prompt_embedding" not in {c["column"] for c in plain["report"]["columns"]}
    api.app.state.prompt_embedder = fake_embed
    report = (await api.post("/api/drift/run", json={"route": "support"})).json()["data"][0]
    column = next(c for c in report["report"]["columns"] if c["column"] == "prompt_embedding")
    assert column["kind"] == "embedding" and column["drifted"] is True
    assert column["reference_rows"] == 100 and column["current_rows"] == 60
    assert len(report["report"]["columns"]) == 6
