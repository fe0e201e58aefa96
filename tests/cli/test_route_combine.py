"""``modelyard route set`` takes a combination route (issue 18) and ``route list`` shows it;
a bad one is refused with what to change."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from modelyard.cli import main
from modelyard.registry import Registry
from tests.conftest import register_scripted


def run(*args: str, code: int = 0) -> str:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_route_set_takes_a_vote_and_list_shows_it(home_registry: Registry, tmp_path: Path) -> None:
    for model in ("clf", "clf", "clf"):
        register_scripted(home_registry, model)
    policy = tmp_path / "vote.yaml"
    policy.write_text("combine: {kind: vote, targets: [clf@1, clf@2, clf@3]}\n", encoding="utf-8")
    assert "policy set" in run("route", "set", "clf", "-f", str(policy))
    shown = json.loads(run("route", "show", "clf", "--json"))
    assert shown["policy"]["combine"] == {"kind": "vote", "targets": ["clf@1", "clf@2", "clf@3"]}
    assert "vote of clf@1, clf@2, clf@3" in run("route", "list")

    policy.write_text("combine: {kind: vote, targets: [clf@1, clf@9]}\n", encoding="utf-8")
    assert "clf@9" in run("route", "set", "clf", "-f", str(policy), code=1)
    policy.write_text("combine: {kind: vote, targets: [clf@1]}\n", encoding="utf-8")
    assert "at least 2" in run("route", "set", "clf", "-f", str(policy), code=1)
