"""The sealed container: chunks authenticated one by one against the header, a key check
that tells a wrong secret from a damaged archive, and an end that cannot be cut off."""

from __future__ import annotations

import io
import os

import pytest

from modelyard.backup.errors import BackupError, DamagedArchive, WrongSecret
from modelyard.backup.sealing import BackupKey, BackupSecret, OpenedReader, Passphrase, SealedWriter

PLAIN = os.urandom(3 * 1000 + 17)  # four chunks of 1,000 bytes, the last one short
PASSPHRASE = Passphrase("correct horse battery")


def sealed(secret: BackupSecret, plain: bytes = PLAIN) -> bytes:
    out = io.BytesIO()
    writer = SealedWriter(out, secret, chunk_bytes=1000)
    for start in range(0, len(plain), 333):  # written in pieces that straddle chunks
        writer.write(plain[start : start + 333])
    writer.finish()
    return out.getvalue()


def opened(archive: bytes, secret: BackupSecret) -> bytes:
    reader = OpenedReader(io.BytesIO(archive), secret)
    data = reader.read()
    reader.drain()
    return data or b""


def test_a_passphrase_and_a_key_file_round_trip() -> None:
    archive = sealed(PASSPHRASE)
    assert archive.startswith(b"MYBACKUP") and PLAIN[:64] not in archive
    assert opened(archive, PASSPHRASE) == PLAIN
    key = BackupKey.generate()
    assert opened(sealed(key), BackupKey.parse(key.encoded() + "\n")) == PLAIN
    assert opened(sealed(key, b""), key) == b""  # an empty plaintext is one last chunk
    assert sealed(key) != sealed(key)  # a fresh salt and nonce prefix each time


def test_a_wrong_secret_is_told_apart_before_decrypting() -> None:
    archive = sealed(PASSPHRASE)
    with pytest.raises(WrongSecret, match="wrong passphrase"):
        OpenedReader(io.BytesIO(archive), Passphrase("not the passphrase"))
    with pytest.raises(WrongSecret, match="sealed with a passphrase"):
        OpenedReader(io.BytesIO(archive), BackupKey.generate())
    keyed = sealed(BackupKey.generate())
    with pytest.raises(WrongSecret, match="wrong key file"):
        OpenedReader(io.BytesIO(keyed), BackupKey.generate())
    with pytest.raises(WrongSecret, match="sealed with a key file"):
        OpenedReader(io.BytesIO(keyed), PASSPHRASE)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda a: a[:-1], "cut short"),  # the last chunk's tag
        (lambda a: a[: len(a) - 200], "cut short"),
        (lambda a: a[:100] + bytes([a[100] ^ 1]) + a[101:], "fails authentication"),
        (lambda a: a + b"\0", "after its last chunk"),
        (lambda a: _without_last_chunk(a), "cut short"),
        (lambda a: b"NOTABACKUP" + a[10:], "not a modelyard backup"),
    ],
)
def test_damage_is_found(damage: object, message: str) -> None:
    key = BackupKey.generate()
    archive = damage(sealed(key))  # type: ignore[operator]
    with pytest.raises(DamagedArchive, match=message):
        opened(archive, key)


def test_an_altered_header_reads_as_a_wrong_secret() -> None:
    key = BackupKey.generate()
    archive = bytearray(sealed(key))
    archive[20] ^= 1  # inside the salt
    with pytest.raises(WrongSecret):
        opened(bytes(archive), key)


def _without_last_chunk(archive: bytes) -> bytes:
    head = 8 + 5 + 16 + 7 + 16
    offsets, position = [], head
    while position < len(archive):
        offsets.append(position)
        position += 5 + int.from_bytes(archive[position + 1 : position + 5], "big")
    return archive[: offsets[-1]]


def test_secrets_are_checked() -> None:
    with pytest.raises(BackupError, match="at least 8"):
        Passphrase("short")
    for bad in ("not base64!", "c2hvcnQ="):
        with pytest.raises(BackupError, match="32 bytes"):
            BackupKey.parse(bad)
