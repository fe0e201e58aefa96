"""Encryption at rest of stored prompts and responses: AES-256-GCM with a key ring.

Every sealed blob names the key that sealed it, so rotating (adding a new primary key)
keeps every older row readable for as long as its key stays in the ring.
Blob layout: ``b"MY1" | len(key id) (1 byte) | key id | nonce (12 bytes) | ciphertext+tag``.

Nonces are random 96-bit values from the OS (``os.urandom``); ``seal_many`` draws the
nonces of a whole batch in one call, which is the same randomness as one call per message.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from modelyard.config import Settings

MAGIC = b"MY1"
NONCE_BYTES = 12
KEY_FILE = "content.keys"


class ContentKeyError(ValueError):
    """A sealed blob cannot be opened: its key is not in the ring, or it was tampered with."""


@dataclass(frozen=True)
class ContentCipher:
    primary: str
    keys: dict[str, bytes]
    # AESGCM objects by key id, made on first use (an AESGCM is stateless between calls,
    # so one per key serves every thread). Each entry keeps the key bytes it was made from.
    _aeads: dict[str, tuple[bytes, AESGCM]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def seal(self, plaintext: bytes) -> bytes:
        key_id = self.primary.encode("ascii")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead(self.primary).encrypt(nonce, plaintext, key_id)
        return MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed

    def seal_many(self, plaintexts: Sequence[bytes]) -> list[bytes]:
        """``[seal(p) for p in plaintexts]``, drawing every nonce with one OS call."""
        if not plaintexts:
            return []
        key_id = self.primary.encode("ascii")
        aead = self._aead(self.primary)
        header = MAGIC + bytes([len(key_id)]) + key_id
        nonces = os.urandom(NONCE_BYTES * len(plaintexts))
        sealed: list[bytes] = []
        for start, plaintext in zip(range(0, len(nonces), NONCE_BYTES), plaintexts, strict=True):
            nonce = nonces[start : start + NONCE_BYTES]
            sealed.append(header + nonce + aead.encrypt(nonce, plaintext, key_id))
        return sealed

    def open(self, blob: bytes) -> bytes:
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 1:
            raise ContentKeyError("not a modelyard sealed blob")
        size = blob[len(MAGIC)]
        start = len(MAGIC) + 1
        key_id = blob[start : start + size]
        nonce = blob[start + size : start + size + NONCE_BYTES]
        name = key_id.decode("ascii", "replace")
        if name not in self.keys:
            raise ContentKeyError(
                f"content was sealed with key '{name}', which is not in the key ring"
            )
        try:
            return self._aead(name).decrypt(nonce, blob[start + size + NONCE_BYTES :], key_id)
        except InvalidTag as error:
            raise ContentKeyError("sealed content failed authentication") from error

    def _aead(self, key_id: str) -> AESGCM:
        key = self.keys[key_id]
        cached = self._aeads.get(key_id)
        if cached is None or cached[0] != key:  # first use, or the ring was changed
            cached = (key, AESGCM(key))
            self._aeads[key_id] = cached
        return cached[1]

    def key_of(self, blob: bytes) -> str | None:
        if not blob.startswith(MAGIC):
            return None
        size = blob[len(MAGIC)]
        return blob[len(MAGIC) + 1 : len(MAGIC) + 1 + size].decode("ascii", "replace")


def cipher_for(settings: Settings) -> ContentCipher:
    """The content key ring this machine uses: ``MODELYARD_CONTENT_KEYS``, else
    ``home/content.keys`` (created on first use)."""
    if settings.content_keys is not None:
        return parse_key_list(settings.content_keys.get_secret_value())
    return load_or_create(settings.ensure_home())


def parse_key_list(value: str) -> ContentCipher:
    """``id1:base64key,id2:base64key`` (the first is the primary), as the env var gives it."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for part in value.split(","):
        key_id, sep, encoded = part.strip().partition(":")
        if not sep or not key_id:
            raise ContentKeyError("content keys look like 'id:base64,id2:base64'")
        keys[key_id] = _decoded(key_id, encoded)
        order.append(key_id)
    if not order:
        raise ContentKeyError("no content key given")
    return ContentCipher(primary=order[0], keys=keys)


def load_or_create(home: Path) -> ContentCipher:
    """The key ring in ``home/content.keys`` (mode 0600), created on first use."""
    path = home / KEY_FILE
    if not path.exists():
        _write(path, _new_ring(None))
    data = json.loads(path.read_text(encoding="utf-8"))
    keys = {key_id: _decoded(key_id, encoded) for key_id, encoded in data["keys"].items()}
    return ContentCipher(primary=str(data["primary"]), keys=keys)


def rotate(home: Path) -> tuple[str, str]:
    """Add a new primary key to ``home/content.keys``; returns (old primary, new primary)."""
    path = home / KEY_FILE
    current = load_or_create(home)
    ring = _new_ring(current)
    _write(path, ring)
    return current.primary, str(ring["primary"])


def ring_text(cipher: ContentCipher) -> str:
    """``cipher`` as ``content.keys`` holds it (a backup keeps the ring in this form)."""
    keys = {key_id: base64.b64encode(key).decode() for key_id, key in cipher.keys.items()}
    return json.dumps({"primary": cipher.primary, "keys": keys}, indent=2)


def _new_ring(current: ContentCipher | None) -> dict[str, object]:
    keys = {k: base64.b64encode(v).decode() for k, v in (current.keys if current else {}).items()}
    key_id = f"k{len(keys) + 1}-{secrets.token_hex(3)}"
    keys[key_id] = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
    return {"primary": key_id, "keys": keys}


def _write(path: Path, ring: dict[str, object]) -> None:
    staged = path.with_suffix(".tmp")
    staged.unlink(missing_ok=True)
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(ring, file, indent=2)
        file.flush()
        os.fsync(file.fileno())
    staged.replace(path)


def _decoded(key_id: str, encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as error:
        raise ContentKeyError(f"content key '{key_id}' is not valid base64") from error
    if len(key) != 32:
        raise ContentKeyError(f"content key '{key_id}' must be 32 bytes (AES-256)")
    return key
