"""Reference docs are generated from the code; stale docs fail the suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from cogapp import Cog

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "page", ["docs/settings.md", "docs/cli.md", "docs/observe.md", "docs/engines.md"]
)
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


def test_every_metric_served_is_in_the_registry_the_docs_list() -> None:
    """A metric made outside ``METRICS`` would be served and not documented."""
    from prometheus_client.parser import text_string_to_metric_families

    from modelyard.observe.metrics import METRICS, Metrics
    from modelyard.observe.requestlog import WriterStats

    class Log:
        queued = 0
        stats = WriterStats()

    metrics = Metrics()
    metrics.watch_engines(list)
    metrics.watch_log(Log())  # type: ignore[arg-type]
    served = [family.name for family in text_string_to_metric_families(metrics.render().decode())]
    assert served == [metric.name for metric in METRICS]
    observe_page = (ROOT / "docs/observe.md").read_text()
    for metric in METRICS:
        assert f"| `{metric.exposed}` | {metric.kind} |" in observe_page
