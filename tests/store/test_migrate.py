"""Opening a store skips Alembic only when the store is at the head of one linear chain of
scripts; anything else (a pending migration, a missing version table, scripts it cannot
read as a chain) goes to Alembic as before."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from modelyard.store import Store, open_store
from modelyard.store.migrate import (
    VERSIONS,
    alembic_config,
    current_revision,
    is_at_head,
    script_head,
    stamped_revisions,
)


def test_the_head_is_alembics(store: Store) -> None:
    heads = ScriptDirectory.from_config(alembic_config(store.engine)).get_heads()
    assert heads == [script_head()]


def test_a_migrated_store_is_at_head(store: Store) -> None:
    assert stamped_revisions(store.engine) == (current_revision(store.engine),)
    assert is_at_head(store.engine)


def test_an_empty_database_is_not(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert stamped_revisions(engine) is None
        assert not is_at_head(engine)
    finally:
        engine.dispose()


def test_a_store_one_migration_behind_is_upgraded(database_url: str, store: Store) -> None:
    head = current_revision(store.engine)
    command.downgrade(alembic_config(store.engine), "-1")
    behind = current_revision(store.engine)
    assert behind is not None and behind != head
    assert "console_preferences" not in _tables(store)  # the last one's
    assert not is_at_head(store.engine)
    again = open_store(database_url)
    try:
        assert current_revision(again.engine) == head
        assert "console_preferences" in _tables(again)
        assert is_at_head(again.engine)
    finally:
        again.close()


def _tables(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names())


def _indexes(store: Store, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(store.engine).get_indexes(table)}


def test_new_scripts_are_not_skipped(store: Store, tmp_path: Path) -> None:
    """Code with a migration the store has not had: not at head, for those scripts."""
    versions = tmp_path / "versions"
    shutil.copytree(VERSIONS, versions, ignore=shutil.ignore_patterns("__pycache__"))
    head = script_head()
    (versions / "0099_next.py").write_text(
        f'revision = "0099_next"\ndown_revision = "{head}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n"
    )
    assert script_head(versions) == "0099_next"
    assert is_at_head(store.engine)
    assert not is_at_head(store.engine, versions)


def test_a_second_stamped_revision_is_not_at_head(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('other')"))
    assert not is_at_head(store.engine)


def scripts(tmp_path: Path, *bodies: str) -> Path:
    versions = tmp_path / "versions"
    versions.mkdir()
    for number, body in enumerate(bodies):
        (versions / f"{number:04d}_script.py").write_text(body)
    return versions


def script(revision: str, down: object, extra: str = "") -> str:
    return f"revision = {revision!r}\ndown_revision = {down!r}\n{extra}"


def test_a_linear_chain_in_any_file_order(tmp_path: Path) -> None:
    versions = scripts(
        tmp_path,
        script("c", "b"),
        'from alembic import op\n\nrevision: str = "a"\ndown_revision: str | None = None\n',
        script("b", "a", "branch_labels = None\ndepends_on = None\n"),
    )
    (versions / "__init__.py").write_text("x = 1\n")
    (versions / ".#0001_lock.py").write_text("not python")
    (versions / "notes.txt").write_text("skipped")
    assert script_head(versions) == "c"


@pytest.mark.parametrize(
    "bodies",
    [
        pytest.param((), id="no scripts"),
        pytest.param((script("a", None), script("b", "a"), script("c", "a")), id="branch"),
        pytest.param((script("a", None), script("b", None)), id="two roots"),
        pytest.param((script("a", None), script("c", "b")), id="missing parent"),
        pytest.param((script("a", None), script("a", None)), id="duplicate"),
        pytest.param(
            (script("a", None), script("b", "a"), script("m", ("a", "b"))),
            id="merge",
        ),
        pytest.param((script("a", None, "branch_labels = ('x',)\n"),), id="branch label"),
        pytest.param((script("a", None), script("b", "a", "depends_on = 'a'\n")), id="depends"),
        pytest.param(("revision = 'a'\n",), id="no down_revision"),
        pytest.param(("revision = make()\ndown_revision = None\n",), id="not a literal"),
        pytest.param((script("a", None, "revision = 'b'\n"),), id="assigned twice"),
        pytest.param((script("a", None, "if x:\n    revision = 'b'\n"),), id="in an if"),
        pytest.param(
            (script("a", None, "def f():\n    global revision\n    revision = 'b'\n"),),
            id="in a function",
        ),
        pytest.param((script("a", None, "from x import revision\n"),), id="imported"),
        pytest.param((script("a", None, "from x import *\n"),), id="star import"),
        pytest.param((script("a", None, "for revision in x:\n    pass\n"),), id="loop"),
        pytest.param(("revision = down_revision = 'a'\n",), id="chained"),
        pytest.param(("revision = 'a'\ndown_revision = None\ndef f(:\n",), id="syntax error"),
    ],
)
def test_anything_but_one_readable_chain_has_no_head(
    tmp_path: Path, bodies: tuple[str, ...]
) -> None:
    assert script_head(scripts(tmp_path, *bodies)) is None
