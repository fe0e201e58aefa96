"""``modelyard backup`` and ``modelyard restore``: secrets from a file, a key file or the
environment, readable refusals with exit status 1, nothing written on a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelyard.backup.sealing import BackupKey
from modelyard.cli import main
from modelyard.guard import crypto

PASSPHRASE = "a passphrase for tests"


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "passphrase").write_text(PASSPHRASE + "\n")
    (directory / "wrong").write_text("not the passphrase\n")
    (directory / "key").write_text(BackupKey.generate().encoded() + "\n")
    return directory


def run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, list(args), catch_exceptions=False)


def source_home(cli: CliRunner) -> str:
    """A home with a store (a key in it) and a content key ring; returns the key's id."""
    created = json.loads(run(cli, "keys", "create", "ops", "--role", "admin", "--json").output)
    assert "primary:" in run(cli, "content", "keys").output
    return str(created["id"])


def move_to(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(home))


def test_backup_and_restore_with_a_passphrase_file(
    cli: CliRunner, secrets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id = source_home(cli)
    archive = tmp_path / "x.backup"
    made = run(cli, "backup", str(archive), "--passphrase-file", str(secrets_dir / "passphrase"))
    assert made.exit_code == 0, made.output
    assert "content.keys" in made.output and str(archive) in made.output
    assert list(tmp_path.glob(".x.backup*")) == []  # no partial file left
    move_to(tmp_path / "new", monkeypatch)
    restored = run(
        cli, "restore", str(archive), "--passphrase-file", str(secrets_dir / "passphrase"), "--json"
    )
    assert restored.exit_code == 0, restored.output
    report = json.loads(restored.output)
    assert report["backend"] == "sqlite" and report["home_files"] == ["content.keys"]
    assert [k["id"] for k in json.loads(run(cli, "keys", "list", "--json").output)] == [key_id]
    again = run(cli, "restore", str(archive), "--passphrase-file", str(secrets_dir / "passphrase"))
    assert again.exit_code == 1 and "not empty" in again.output and "--force" in again.output
    forced = run(
        cli,
        "restore",
        str(archive),
        "--passphrase-file",
        str(secrets_dir / "passphrase"),
        "--force",
    )
    assert forced.exit_code == 0 and "restored the backup of" in forced.output


def test_a_key_file_and_the_environment(
    cli: CliRunner, secrets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_home(cli)
    keyed, by_env = tmp_path / "keyed.backup", tmp_path / "env.backup"
    assert run(cli, "backup", str(keyed), "--key-file", str(secrets_dir / "key")).exit_code == 0
    monkeypatch.setenv("MODELYARD_BACKUP_PASSPHRASE", PASSPHRASE)
    assert run(cli, "backup", str(by_env)).exit_code == 0
    ring = crypto.load_or_create(tmp_path / "home")
    move_to(tmp_path / "new", monkeypatch)
    mismatch = run(cli, "restore", str(keyed))
    assert mismatch.exit_code == 1 and "sealed with a key file: give --key-file" in mismatch.output
    assert run(cli, "restore", str(keyed), "--key-file", str(secrets_dir / "key")).exit_code == 0
    assert crypto.load_or_create(tmp_path / "new") == ring
    move_to(tmp_path / "newer", monkeypatch)
    assert run(cli, "restore", str(by_env)).exit_code == 0
    monkeypatch.delenv("MODELYARD_BACKUP_PASSPHRASE")
    missing = run(cli, "backup", str(tmp_path / "y.backup"))
    assert missing.exit_code == 2 and "no passphrase" in missing.output


def test_failures_are_one_line_and_write_nothing(
    cli: CliRunner, secrets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing = run(
        cli, "backup", str(tmp_path / "none.backup"), "--key-file", str(secrets_dir / "key")
    )
    assert nothing.exit_code == 1 and "nothing to back up" in nothing.output
    assert not (tmp_path / "none.backup").exists()
    source_home(cli)
    archive = tmp_path / "x.backup"
    run(cli, "backup", str(archive), "--passphrase-file", str(secrets_dir / "passphrase"))
    data = archive.read_bytes()
    tampered = tmp_path / "tampered.backup"
    tampered.write_bytes(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])
    target = tmp_path / "new"
    move_to(target, monkeypatch)
    wrong = run(cli, "restore", str(archive), "--passphrase-file", str(secrets_dir / "wrong"))
    assert wrong.exit_code == 1
    assert wrong.output == "Error: wrong passphrase for this backup (or its header was altered)\n"
    damaged = run(
        cli, "restore", str(tampered), "--passphrase-file", str(secrets_dir / "passphrase")
    )
    assert damaged.exit_code == 1 and "damaged or was altered" in damaged.output
    both = run(
        cli,
        *("restore", str(archive), "--passphrase-file", str(secrets_dir / "passphrase")),
        *("--key-file", str(secrets_dir / "key")),
    )
    assert both.exit_code == 2 and "not both" in both.output
    assert not target.exists() or not any(target.iterdir())


def test_a_backup_to_standard_output_restores_from_standard_input(
    cli: CliRunner, secrets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_home(cli)
    made = run(cli, "backup", "-", "--key-file", str(secrets_dir / "key"))
    assert made.exit_code == 0 and made.stdout_bytes.startswith(b"MYBACKUP")
    assert "standard output" in made.stderr
    move_to(tmp_path / "new", monkeypatch)
    restored = cli.invoke(
        main, ["restore", "-", "--key-file", str(secrets_dir / "key")], input=made.stdout_bytes
    )
    assert restored.exit_code == 0, restored.output
