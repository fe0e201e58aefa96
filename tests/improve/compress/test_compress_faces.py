"""Compression's CLI and console faces: the CLI makes, measures and gates a variant in its
own process and says plainly what it refuses; the console pages render what their JSON
twins return."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.bootstrap import smollm2_path
from modelyard.cli import main
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient

pytestmark = pytest.mark.anyio


def add_smollm(registry: Registry) -> None:
    registry.add_version(
        "smol",
        VersionCreate(engine_kind="llamacpp", artifact_uri=str(smollm2_path())),
        actor="tests",
    )


def test_the_cli_compresses_gates_and_shows(home_registry: Registry, tmp_path: Path) -> None:
    add_smollm(home_registry)
    texts = tmp_path / "texts.jsonl"
    texts.write_text(
        "\n".join(
            json.dumps({"text": text})
            for text in ("The sun rises in the east.", "Cats like to sleep in the sun.")
        )
    )
    gate = tmp_path / "gate.yaml"
    # Q4_0 drops Q4_1's per-block minimum: it cannot model text 0 % worse and pass this.
    gate.write_text("- metric: perplexity\n  greater_is_better: false\n  max_relative_drop: 0\n")
    args = ["compress", "smol@1", "--to", "Q4_0", "--texts-file", str(texts)]
    args += ["--streams", "1", "--max-tokens", "8", "--gate", str(gate)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "@2 Q4_0 failed the gate" in result.output
    assert "max_relative_drop: perplexity worsened" in result.output
    assert home_registry.version("smol", 2).engine_kind == "llamacpp"
    shown = CliRunner().invoke(main, ["compress", "show", "1", "--json"])
    assert shown.exit_code == 0, shown.output
    out = json.loads(shown.output)
    assert out["status"] == "done" and [row["version"] for row in out["variants"]] == [1, 2]
    assert out["variants"][1]["measurements"]["perplexity_texts"] == 2
    listed = CliRunner().invoke(main, ["compress", "list"])
    assert listed.exit_code == 0 and "smol@1" in listed.output and "Q4_0" in listed.output


def test_the_cli_says_what_it_refuses(home_registry: Registry, tmp_path: Path) -> None:
    add_smollm(home_registry)
    cases = [
        (["compress", "smol", "--to", "Q8_0"], "'smol' is not MODEL@N"),
        (["compress", "smol@1", "--to", "Q9"], "unknown quantisation type Q9"),
        (["compress", "smol@1", "--to", "Q8_0", "--streams", "a"], "--streams must be numbers"),
        (
            ["compress", "smol@1", "--to", "Q8_0", "--gate", str(tmp_path / "no.yaml")],
            "does not exist",
        ),
        (["compress", "show", "5"], "no compression 5"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


async def test_the_console_shows_the_table_and_the_front(
    home_registry: Registry, api: AppClient
) -> None:
    add_smollm(home_registry)
    body = {"model": "smol", "version": 1, "to": ["Q8_0"], "streams": [1], "max_tokens": 8}
    body["texts"] = {"texts": ["The sun rises in the east.", "Cats sleep a lot."]}
    started = (await api.post("/api/compress", json=body)).json()
    await api.app.state.improve_jobs.wait(f"compress:{started['id']}")
    page = await api.get(f"/ui/compress/{started['id']}")
    assert page.status_code == 200, page.text
    assert (
        'rel="alternate"' in page.headers["link"] and f"/api/compress/{started['id']}" in page.text
    )
    assert "1 (parent)" in page.text and "Q8_0" in page.text and "ppl x" in page.text
    assert 'id="compression-data"' in page.text and "chart-size" in page.text
    listing = await api.get("/ui/compress")
    assert listing.status_code == 200 and 'id="compress"' in listing.text  # the admin's form
    assert f'href="/ui/compress/{started["id"]}"' in listing.text
