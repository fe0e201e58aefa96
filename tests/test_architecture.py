"""The dependency direction of docs/architecture.md, checked on the source: every
``import`` of every module (function-level ones included), by the package it names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "modelyard"

# package -> the modelyard packages and modules it may import (besides itself).
ALLOWED = {
    "errors": set[str](),
    "wire": set[str](),
    "engines": {"config", "errors", "lazy"},
    "routing": {"engines", "registry", "store", "config", "errors", "wire"},
    "serving": {
        *("guard", "routing", "engines", "observe"),
        *("errors", "wire", "services", "config", ""),
    },
    # Curation may use the log, datasets and the PII detector; it never serves traffic.
    # Distillation writes a student in the `classifier` kind's artifact format (engines).
    "improve": {
        *("observe", "evaluate", "guard", "store", "registry", "engines"),
        *("errors", "wire", "lazy"),
        "jobs",  # background jobs and their client of the app itself, shared with evaluate
    },
    # Backup reads the store and the guard's key files; it serves no traffic.
    "backup": {"store", "guard", "config", "errors", "wire", ""},
}
# A package's HTTP face (its ``routes.py``) may also authorize and reach the services.
HTTP_FACE = {"guard", "services"}
# Imported only by the app factory and the CLI (and themselves).
EDGES = {
    "cli": {"cli", "__main__"},
    "console": {"console", "app"},
    "improve": {"improve", "app", "cli", "console"},
}


def package_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def imported(path: Path) -> Iterator[str]:
    """The modelyard packages a module imports (``""`` for ``modelyard``'s own
    attributes, such as ``__version__``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "modelyard":
            names = [f"modelyard.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith("modelyard."):
                part = name.split(".")[1]
                yield "" if part.startswith("__") else part


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_the_architecture_allows(package: str) -> None:
    wrong = {
        f"{path.relative_to(SRC)} imports modelyard.{name}"
        for path in modules()
        if package_of(path) == package
        for name in imported(path)
        if name != package
        and name not in ALLOWED[package]
        and not (path.name == "routes.py" and name in HTTP_FACE)
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_only_the_app_and_the_cli_import_the_edges(edge: str) -> None:
    wrong = {
        str(path.relative_to(SRC))
        for path in modules()
        if edge in set(imported(path)) and package_of(path) not in EDGES[edge]
    }
    assert not wrong, sorted(wrong)


def test_the_checks_see_real_imports() -> None:
    """The walker finds the imports it is meant to police (a check that sees nothing
    passes vacuously)."""
    routes = set(imported(SRC / "serving" / "routes.py"))
    assert {"routing", "guard", "engines"} <= routes


MAX_FUNCTION_LINES = 60  # the House issue's rule; Alembic migrations are exempt


def test_no_function_is_longer_than_60_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)"
        for path in sorted(SRC.rglob("*.py"))
        if "migrations" not in path.parts
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    ]
    assert long == [], "split these functions:\n" + "\n".join(long)
