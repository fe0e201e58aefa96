"""What a ``llamacpp`` artifact is: a GGUF file, known by its header (magic, version, counts),
read without loading the weights."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # what llama.cpp reads (version 1 is no longer supported)
_HEADER = struct.Struct("<4sIQQ")  # magic, version, tensor count, metadata key count


class NotGguf(ValueError):
    """The file is not a GGUF file llama.cpp can read; the message says why."""


@dataclass(frozen=True)
class GgufHeader:
    version: int
    tensors: int
    metadata_keys: int


def gguf_header(path: Path) -> GgufHeader:
    """The header of the GGUF file at ``path`` (NotGguf when it is none, or one llama.cpp
    cannot read)."""
    if not path.is_file():
        raise NotGguf(f"'{path}' is not a file")
    with path.open("rb") as handle:
        head = handle.read(_HEADER.size)
    if len(head) < _HEADER.size or not head.startswith(MAGIC):
        raise NotGguf(f"'{path}' is not a GGUF file (it does not start with the GGUF header)")
    _, version, tensors, keys = _HEADER.unpack(head)
    if version not in VERSIONS:
        raise NotGguf(
            f"'{path}' is GGUF version {version}; llama.cpp reads versions "
            f"{', '.join(map(str, VERSIONS))} (convert it again with llama.cpp's tools)"
        )
    if tensors == 0 or keys == 0:
        raise NotGguf(f"'{path}' holds no tensors or no metadata: it is not a model")
    return GgufHeader(version=version, tensors=tensors, metadata_keys=keys)
