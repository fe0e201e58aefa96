from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_add_alias_rollback_and_history(cli: CliRunner, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    out = run(cli, "models", "add", "default", "--gguf", str(gguf), "--alias", "production")
    assert "added default version 1" in out
    run(
        cli,
        "models",
        "add",
        "default",
        "--engine",
        "scripted",
        "--artifact",
        "scripted:",
        "--param",
        'replies=["hi"]',
        "--notes",
        "canary",
    )
    run(cli, "alias", "set", "production", "2", "--reason", "ship it")
    out = run(cli, "alias", "rollback", "production", "--reason", "too slow")
    assert "default:production → v1 (was v2)" in out

    history = json.loads(run(cli, "alias", "history", "production", "--json"))
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (None, 1, ""),
        (1, 2, "ship it"),
        (2, 1, "too slow"),
    ]
    assert all("@" in h["actor"] and h["moved_at"] for h in history)
    table = run(cli, "alias", "history", "production")
    assert "ship it" in table and "too slow" in table

    detail = json.loads(run(cli, "models", "show", "default", "--json"))
    assert detail["versions"][1]["parameters"] == {"replies": ["hi"]}
    assert detail["versions"][0]["artifact_sha256"]
    assert json.loads(run(cli, "alias", "show", "production", "--json"))["version"] == 1
    past = json.loads(run(cli, "alias", "show", "production", "--at", "2001-01-01", "--json"))
    assert past["version"] is None
    assert "default" in run(cli, "models", "list")


def test_upstream_version(cli: CliRunner) -> None:
    out = run(
        cli,
        "models",
        "add",
        "big",
        "--upstream",
        "http://127.0.0.1:9/v1",
        "--upstream-model",
        "qwen",
        "--api-key-env",
        "VLLM_KEY",
        "--json",
    )
    params = json.loads(out)["version"]["parameters"]
    assert params == {"model": "qwen", "api_key_env": "VLLM_KEY"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "add", "m", "--gguf", "/no/such.gguf"], "does not exist"),
        (["models", "add", "m", "--upstream", "http://", "--upstream-model", "x"], "no host"),
        (["models", "add", "m", "--upstream", "http://h/v1"], "--upstream-model"),
        (["models", "add", "m"], "exactly one of"),
        (["models", "show", "ghost"], "model 'ghost' does not exist"),
        (["alias", "set", "production", "3", "-m", "ghost"], "does not exist"),
        (["alias", "rollback", "canary"], "does not exist"),
        (["alias", "history", "-m", "ghost"], "does not exist"),
        (
            ["models", "add", "m", "--engine", "scripted", "--artifact", "s:", "--param", "x"],
            "KEY=VALUE",
        ),
    ],
)
def test_mistakes_give_one_line_and_exit_non_zero(
    cli: CliRunner, args: list[str], message: str
) -> None:
    result = cli.invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_unreachable_database_is_a_readable_error(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = cli.invoke(main, ["models", "list"])
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output
