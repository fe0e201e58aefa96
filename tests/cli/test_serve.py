"""``modelyard serve``'s first lines: where the console, the API docs and the admin key are,
before anything else (issue 14: the admin key's line used to drown under Alembic's)."""

from __future__ import annotations

from pathlib import Path

from modelyard import __version__
from modelyard.cli.serve import banner
from modelyard.config import Settings
from tests.guard.conftest import redis_prefix, redis_url  # noqa: F401 (fixtures)
from tests.live import live_server


def first_lines(home: Path, count: int) -> list[str]:
    log = next(home.glob("serve-*.log"))
    return log.read_text().splitlines()[:count]


def expected(base: str, home: Path, key_state: str, workers: str = "") -> list[str]:
    host_port = base.removeprefix("http://")
    return [
        f"modelyard {__version__} serving on {host_port}{workers}",
        f"  console:    {base}/",
        f"  API docs:   {base}/docs",
        f"  OpenAI API: {base}/v1",
        f"  admin key:  {home / 'admin.key'} ({key_state})",
        f"  data:       {home}",
    ]


def test_first_start_says_where_the_console_and_the_new_admin_key_are(tmp_path: Path) -> None:
    home = tmp_path / "first"
    with live_server(home) as base:
        pass
    assert first_lines(home, 6) == expected(base, home, "created now, mode 0600: keep it secret")
    assert "alembic" not in next(home.glob("serve-*.log")).read_text()
    for log in home.glob("serve-*.log"):
        log.unlink()
    with live_server(home) as again:
        pass
    assert first_lines(home, 6) == expected(again, home, "created at an earlier start")


def test_workers_print_the_same_first_lines(
    tmp_path: Path,
    redis_url: str,  # noqa: F811 (the fixture)
    redis_prefix: str,  # noqa: F811
) -> None:
    home = tmp_path / "workers"
    env = {
        "MODELYARD_RATE_LIMIT_BACKEND": "redis",
        "MODELYARD_REDIS_URL": redis_url,
        "MODELYARD_REDIS_PREFIX": redis_prefix,
    }
    with live_server(home, args=["--workers", "2"], **env) as base:
        pass
    lines = expected(base, home, "created now, mode 0600: keep it secret", " with 2 workers")
    assert first_lines(home, 6) == lines


def test_an_address_of_every_interface_is_shown_as_the_loopback_one(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    text = banner(settings, "0.0.0.0", 8000, 1, None)
    assert "  console:    http://127.0.0.1:8000/" in text.splitlines()
    assert "not in" in text and "modelyard keys create NAME --role admin" in text
