"""Artifacts of versions: local files and directories are pinned by their SHA-256, URLs are
kept as given."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

from modelyard.registry.errors import InvalidRegistration

_CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_of_dir(path: Path) -> str:
    """One digest of a directory: every file's relative path and SHA-256, in path order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_of(file)}\n".encode())
    return digest.hexdigest()


def local_path(uri: str) -> Path | None:
    """The file an artifact URI names, or None when it is not a local file URI or path."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "" and (uri.startswith(("/", ".", "~")) or uri.endswith(".gguf")):
        return Path(uri).expanduser()
    return None


def pin_artifact(uri: str) -> tuple[str, str | None]:
    """Return the URI to store and the SHA-256 of the file it names (None for URLs)."""
    path = local_path(uri)
    if path is None:
        parsed = urlparse(uri)
        if parsed.scheme in ("http", "https") and not parsed.netloc:
            raise InvalidRegistration(f"'{uri}' is not a valid URL: it has no host")
        return uri, None
    resolved = path.resolve()
    if resolved.is_dir():
        return str(resolved), sha256_of_dir(resolved)
    if not resolved.is_file():
        raise InvalidRegistration(f"artifact file '{path}' does not exist")
    return str(resolved), sha256_of(resolved)
