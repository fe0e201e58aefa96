"""Alembic, driven from code: the scripts live in ``store/migrations``.

Opening a store first checks whether it is already at the head revision, reading the version
table with SQLAlchemy and the scripts' ``revision`` and ``down_revision`` declarations as
text. Alembic (with Mako and Pygments, about 16 MiB in a server) is imported only when there
is something to migrate, or when the scripts are not a single linear chain that this check
can follow: then Alembic decides, as it always did (issue 8)."""

from __future__ import annotations

import ast
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, column, inspect, select, table

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSIONS = MIGRATIONS / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default name; env.py keeps it
_DECLARED = ("revision", "down_revision", "branch_labels", "depends_on")


def alembic_config(engine: Engine | None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply the migrations up to head; a store already there is left as it is, without
    importing Alembic."""
    if is_at_head(engine):
        return
    with alembic_quiet():
        from alembic import command

        command.upgrade(alembic_config(engine), "head")


def upgrade_connection(connection: Connection, revision: str) -> None:
    """Apply the migrations up to ``revision`` on ``connection``, inside its caller's
    transaction (a restore loads rows between two upgrades and commits once)."""
    with alembic_quiet():
        from alembic import command

        config = alembic_config(connection.engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of the scripts' (exactly, not a prefix of one)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config(None)
    try:
        script = ScriptDirectory.from_config(config).get_revision(revision)
    except CommandError:
        return False
    return script is not None and script.revision == revision


@contextlib.contextmanager
def alembic_quiet() -> Iterator[None]:
    """Alembic logs each plugin it sets up and each script it runs at INFO: a screen of lines
    on a first start, before the lines that matter. They show when the log is at DEBUG."""
    logger = logging.getLogger("alembic")
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine, versions: Path = VERSIONS) -> bool:
    """True only when the scripts form a single linear chain and the store's version table
    holds exactly its head; any doubt answers False (and Alembic is asked)."""
    head = script_head(versions)
    return head is not None and stamped_revisions(engine) == (head,)


def stamped_revisions(engine: Engine) -> tuple[str, ...] | None:
    """The revisions in the store's version table, sorted; None when it has no such table."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = table(VERSION_TABLE, column("version_num"))
        rows = connection.execute(select(versions.c.version_num)).scalars()
        return tuple(sorted(str(value) for value in rows))


def script_head(versions: Path = VERSIONS) -> str | None:
    """The last revision of the scripts in ``versions`` (the files Alembic reads there) when
    they form one linear chain: a single root, each revision the ``down_revision`` of at
    most one other, every revision reached from the root, no branch labels, no
    ``depends_on``. None otherwise, or when a declaration is not a plain literal."""
    parents: dict[str, str | None] = {}
    for path in sorted(versions.glob("*.py")):
        if path.name.startswith(("__init__", ".#")):  # what Alembic skips
            continue
        declared = _declarations(path)
        if declared is None:
            return None
        revision, parent = declared["revision"], declared["down_revision"]
        if not isinstance(revision, str) or revision in parents:
            return None
        if not (parent is None or isinstance(parent, str)):  # a tuple: a merge
            return None
        if declared["branch_labels"] is not None or declared["depends_on"] is not None:
            return None
        parents[revision] = parent
    children: dict[str | None, str] = {}
    for revision, parent in parents.items():
        if parent in children:  # two roots, or a branch
            return None
        children[parent] = revision
    chain: list[str] = []
    following = children.get(None)
    while following is not None:  # ends: each revision has one parent, so comes once
        chain.append(following)
        following = children.get(following)
    if not chain or len(chain) != len(parents):  # a revision off the chain
        return None
    return chain[-1]


def _declarations(path: Path) -> dict[str, object] | None:
    """The values of ``revision``, ``down_revision``, ``branch_labels`` and ``depends_on``
    in a script, when each is a literal assigned once at the top level and bound nowhere
    else (``None`` for the last two when not assigned, as Alembic reads them); None when
    the script is anything else."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, ValueError, SyntaxError, RecursionError):
        return None
    found: dict[str, object] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target in _DECLARED and value is not None:
            try:
                found[target] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return None
    bound = _bindings(tree)
    if bound is None or any(bound.count(name) != (name in found) for name in _DECLARED):
        return None
    if "revision" not in found or "down_revision" not in found:
        return None
    return {name: found.get(name) for name in _DECLARED}


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """``name = value`` or ``name: type = value``: the name and the value."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return target.id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _bindings(tree: ast.Module) -> list[str] | None:
    """Every name the script binds, anywhere and however, once per binding; None when a
    ``from ... import *`` could bind any."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.append(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return None
            names += [(alias.asname or alias.name).partition(".")[0] for alias in node.names]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names += node.names
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.append(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.append(node.rest)
    return names
