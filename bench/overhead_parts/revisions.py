"""``--modelyard-rev``: modelyard served from ``src/`` of a git revision, next to the
working tree's, in the same run. The revision's source is written out with ``git archive``
(read-only: no worktree, no change to the repository) and put first on the server's
``PYTHONPATH``, ahead of the editable install's ``.pth`` entry; the server is started
through a small launcher that prints ``modelyard.__file__``, so the log proves which source
ran. The revision runs with the working tree's venv (its dependencies are assumed to be the
same)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PREFIX = "modelyard@"
IMPORTED_FROM = "modelyard imported from "
# ``python -P -c LAUNCHER serve ...``: -P keeps the current directory off sys.path, so only
# PYTHONPATH and the venv decide where ``modelyard`` comes from.
LAUNCHER = (
    "import sys, modelyard; "
    f"print({IMPORTED_FROM!r} + modelyard.__file__, flush=True); "
    "from modelyard.cli import main; sys.argv[0] = 'modelyard'; sys.exit(main())"
)
WHICH = "import modelyard; print(modelyard.__file__)"


class RevisionError(RuntimeError):
    """An unknown revision, or one whose source cannot be written out or imported."""


@dataclass(frozen=True)
class Revision:
    given: str  # as on the command line, e.g. HEAD~1
    commit: str  # full hash
    short: str
    src: Path  # the directory to put first on PYTHONPATH

    @property
    def name(self) -> str:
        return target_name(self.short)

    def as_dict(self) -> dict[str, str]:
        return {"rev": self.given, "commit": self.commit, "src": str(self.src)}


def target_name(short_commit: str) -> str:
    """The benchmark target of a revision: ``modelyard@7ad487d``."""
    return PREFIX + short_commit


def is_modelyard(target: str) -> bool:
    """The working tree's modelyard or one served from a revision."""
    return target == "modelyard" or target.startswith(PREFIX)


def with_revisions(targets: Sequence[str], revision_targets: Sequence[str]) -> tuple[str, ...]:
    """The plan's targets with the revisions' right after ``modelyard`` (at the end when it
    is not measured), so each runs next to the working tree's in every repetition."""
    names = [t for t in targets if t not in revision_targets]
    at = names.index("modelyard") + 1 if "modelyard" in names else len(names)
    return (*names[:at], *revision_targets, *names[at:])


def with_pythonpath(env: Mapping[str, str], src: Path) -> dict[str, str]:
    """``env`` with ``src`` first on PYTHONPATH."""
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    return out


def imported_from(log_text: str) -> Path | None:
    """Where the launcher's process imported ``modelyard`` from, per its log."""
    for line in log_text.splitlines():
        if line.startswith(IMPORTED_FROM):
            return Path(line[len(IMPORTED_FROM) :].strip())
    return None


def inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def export(repo: Path, given: str, work: Path) -> Revision:
    """Resolve ``given`` in ``repo`` and write its ``src/`` under ``work``."""
    git = ["git", "-C", str(repo)]
    resolved = subprocess.run(
        [*git, "rev-parse", "--verify", "--quiet", f"{given}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if resolved.returncode != 0 or not resolved.stdout.strip():
        raise RevisionError(f"unknown git revision {given!r}")
    commit = resolved.stdout.strip()
    short = subprocess.run(
        [*git, "rev-parse", "--short", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    directory = work / f"rev-{short}"
    if not (directory / "src" / "modelyard").is_dir():
        archive = subprocess.run(
            [*git, "archive", "--format=tar", commit, "src"], capture_output=True, check=False
        )
        if archive.returncode != 0:
            raise RevisionError(f"git archive {commit} src failed: {archive.stderr.decode()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(directory, filter="data")
    src = directory / "src"
    if not (src / "modelyard" / "__init__.py").exists():
        raise RevisionError(f"{given} ({short}) has no src/modelyard")
    return Revision(given, commit, short, src)


def check_import(python: str, env: Mapping[str, str], revision: Revision) -> Path:
    """Import ``modelyard`` the way the revision's server will and check it comes from the
    revision's source, not from the editable install."""
    done = subprocess.run(
        [python, "-P", "-c", WHICH], env=dict(env), capture_output=True, text=True, check=False
    )
    found = Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None
    if found is None or not inside(found, revision.src):
        raise RevisionError(
            f"{revision.name}: modelyard imported from {found or done.stderr.strip()[-300:]}, "
            f"not from {revision.src}"
        )
    return found
