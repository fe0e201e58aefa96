"""Reference docs are generated from the code; stale docs fail the suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from cogapp import Cog

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", ["docs/settings.md", "docs/cli.md"])
def test_generated_reference_is_current(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    status = Cog().main(["cog", "--check", str(ROOT / page)])
    assert status == 0, f"{page} is stale: run .venv/bin/cog -r {page}"


def test_every_setting_and_command_is_documented() -> None:
    from modelyard.cli import main
    from modelyard.config import Settings

    settings_page = (ROOT / "docs/settings.md").read_text()
    for name in Settings.model_fields:
        assert f"MODELYARD_{name.upper()}" in settings_page
    cli_page = (ROOT / "docs/cli.md").read_text()
    for name, command in main.commands.items():
        assert f"## `modelyard {name}`" in cli_page
        for sub in getattr(command, "commands", {}):
            assert f"## `modelyard {name} {sub}`" in cli_page
