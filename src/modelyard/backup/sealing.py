"""The encrypted container of a backup: a small header, then AES-256-GCM chunks.

Layout (integers big-endian)::

    header = b"MYBACKUP" | format (1) | kdf (1) | log2 n (1) | r (1) | p (1) | salt (16)
             | nonce prefix (7) | key check (16)
    chunk  = last (1 byte: 0 or 1) | length (4) | ciphertext and tag (length)

A chunk's nonce is ``prefix | index (4) | last (1)`` and its associated data the whole
header, so chunks cannot be reordered, dropped, cut short or spliced from another archive.
The key check (the tag of an empty message under a nonce no chunk uses) tells a wrong
passphrase or key file from a damaged archive before anything is decrypted.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from modelyard.backup.errors import BackupError, DamagedArchive, WrongSecret

MAGIC = b"MYBACKUP"
FORMAT = 1
KDF_SCRYPT = 1  # a passphrase
KDF_HKDF = 2  # a key file (32 random bytes)
# scrypt's cost: 2**17 x 8 x 128 bytes = 128 MiB and about half a second (OWASP's minimum).
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 17, 8, 1
SALT_BYTES, PREFIX_BYTES, TAG_BYTES, KEY_BYTES = 16, 7, 16, 32
CHUNK_BYTES = 1 << 20
_HEAD = struct.Struct(">8sBBBBB16s7s")
_FRAME = struct.Struct(">BI")
_CHECK_NONCE_TAIL = b"\xff\xff\xff\xff\x02"  # chunks end in 0 or 1
MIN_PASSPHRASE = 8


@dataclass(frozen=True)
class Passphrase:
    """A passphrase the archive key is derived from (scrypt, random salt)."""

    text: str

    def __post_init__(self) -> None:
        if len(self.text) < MIN_PASSPHRASE:
            raise BackupError(f"a backup passphrase needs at least {MIN_PASSPHRASE} characters")


@dataclass(frozen=True)
class BackupKey:
    """A key file's 32 random bytes (the archive key is derived from it with HKDF)."""

    key: bytes = b""

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise BackupError(f"a backup key is {KEY_BYTES} bytes, base64-encoded")

    @classmethod
    def generate(cls) -> BackupKey:
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def parse(cls, text: str) -> BackupKey:
        try:
            return cls(base64.b64decode(text.strip(), validate=True))
        except binascii.Error as error:
            raise BackupError("a backup key file holds 32 bytes in base64") from error

    def encoded(self) -> str:
        return base64.b64encode(self.key).decode("ascii")


BackupSecret = Passphrase | BackupKey


def read_key_file(path: Path) -> BackupKey:
    try:
        return BackupKey.parse(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as error:
        raise BackupError(f"cannot read the backup key file {path}: {error}") from error


@dataclass(frozen=True)
class _Header:
    kdf: int
    log2_n: int
    r: int
    p: int
    salt: bytes
    prefix: bytes

    def head(self) -> bytes:
        fields = (self.kdf, self.log2_n, self.r, self.p, self.salt, self.prefix)
        return _HEAD.pack(MAGIC, FORMAT, *fields)


def _derive(secret: BackupSecret, header: _Header) -> AESGCM:
    if isinstance(secret, Passphrase):
        kdf = Scrypt(
            salt=header.salt, length=KEY_BYTES, n=1 << header.log2_n, r=header.r, p=header.p
        )
        return AESGCM(kdf.derive(secret.text.encode("utf-8")))
    hkdf = HKDF(hashes.SHA256(), length=KEY_BYTES, salt=header.salt, info=b"modelyard backup")
    return AESGCM(hkdf.derive(secret.key))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, int(last))


class SealedWriter:
    """Writes what it is given to ``out`` as sealed chunks; ``finish()`` seals the last one
    (an archive without it reads as cut short)."""

    def __init__(self, out: BinaryIO, secret: BackupSecret, chunk_bytes: int = CHUNK_BYTES) -> None:
        scrypt = isinstance(secret, Passphrase)
        header = _Header(
            kdf=KDF_SCRYPT if scrypt else KDF_HKDF,
            log2_n=SCRYPT_LOG2_N if scrypt else 0,
            r=SCRYPT_R if scrypt else 0,
            p=SCRYPT_P if scrypt else 0,
            salt=os.urandom(SALT_BYTES),
            prefix=os.urandom(PREFIX_BYTES),
        )
        self._aead = _derive(secret, header)
        head = header.head()
        check = self._aead.encrypt(header.prefix + _CHECK_NONCE_TAIL, b"", head)
        self._aad = head + check
        self._prefix = header.prefix
        self._out = out
        self._chunk_bytes = chunk_bytes
        self._buffer = bytearray()
        self._index = 0
        out.write(self._aad)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > self._chunk_bytes:
            self._seal(bytes(self._buffer[: self._chunk_bytes]), last=False)
            del self._buffer[: self._chunk_bytes]
        return len(data)

    def finish(self) -> None:
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _seal(self, plaintext: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), plaintext, self._aad)
        self._out.write(_FRAME.pack(int(last), len(sealed)) + sealed)
        self._index += 1


class OpenedReader(io.RawIOBase):
    """The plaintext of a sealed archive, read chunk by chunk; each chunk is authenticated
    before a byte of it is handed out, and the end is checked (no chunk missing, nothing
    after the last)."""

    def __init__(self, source: BinaryIO, secret: BackupSecret) -> None:
        super().__init__()
        header = _read_header(source)
        _match_kind(secret, header)
        self._aead = _derive(secret, header)
        head = header.head()
        check = _exactly(source, TAG_BYTES)
        try:
            self._aead.decrypt(header.prefix + _CHECK_NONCE_TAIL, check, head)
        except InvalidTag as error:
            raise WrongSecret(_wrong(secret)) from error
        self._aad = head + check
        self._prefix = header.prefix
        self._source = source
        self._pending = b""
        self._index = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._ended:
            self._pending = self._next_chunk()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def drain(self) -> None:
        """Read to the end, so that the whole archive is authenticated."""
        while self.read(CHUNK_BYTES):
            pass

    def _next_chunk(self) -> bytes:
        last, length = _FRAME.unpack(_exactly(self._source, _FRAME.size))
        if last not in (0, 1) or not TAG_BYTES <= length <= 16 * CHUNK_BYTES:
            raise DamagedArchive(f"the backup is damaged (chunk {self._index} is malformed)")
        sealed = _exactly(self._source, length)
        nonce = _nonce(self._prefix, self._index, bool(last))
        try:
            plaintext = self._aead.decrypt(nonce, sealed, self._aad)
        except InvalidTag as error:
            raise DamagedArchive(
                f"the backup is damaged or was altered (chunk {self._index} fails authentication)"
            ) from error
        self._index += 1
        if last:
            self._ended = True
            if self._source.read(1):
                raise DamagedArchive("the backup is damaged (data after its last chunk)")
        return plaintext


def _read_header(source: BinaryIO) -> _Header:
    raw = source.read(_HEAD.size)
    if len(raw) < _HEAD.size or not raw.startswith(MAGIC):
        raise DamagedArchive("not a modelyard backup (it does not start with MYBACKUP)")
    _, version, kdf, log2_n, r, p, salt, prefix = _HEAD.unpack(raw)
    if version != FORMAT:
        raise DamagedArchive(f"backup format {version} is not known to this modelyard")
    header = _Header(kdf=kdf, log2_n=log2_n, r=r, p=p, salt=salt, prefix=prefix)
    scrypt_sane = 10 <= log2_n <= 22 and 1 <= r <= 32 and 1 <= p <= 16
    if not (kdf == KDF_HKDF or (kdf == KDF_SCRYPT and scrypt_sane)):
        raise DamagedArchive("the backup's header is damaged (unknown key derivation)")
    return header


def _match_kind(secret: BackupSecret, header: _Header) -> None:
    if header.kdf == KDF_SCRYPT and not isinstance(secret, Passphrase):
        raise WrongSecret(
            "this backup was sealed with a passphrase: give --passphrase-file, "
            "MODELYARD_BACKUP_PASSPHRASE or type it"
        )
    if header.kdf == KDF_HKDF and not isinstance(secret, BackupKey):
        raise WrongSecret("this backup was sealed with a key file: give --key-file")


def _wrong(secret: BackupSecret) -> str:
    what = "passphrase" if isinstance(secret, Passphrase) else "key file"
    return f"wrong {what} for this backup (or its header was altered)"


def _exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise DamagedArchive("the backup is cut short (a chunk is missing)")
    return data
