"""The format of API keys: ``my_<id>_<secret>``, with a 190-bit secret.

The id is public (it names the key in logs, usage and the console); the whole key is
hashed with SHA-256 and only the hash is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

PREFIX = "my"
ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 12
SECRET_LENGTH = 32  # log2(62) * 32 ≈ 190 bits
KEY_PATTERN = re.compile(rf"^{PREFIX}_([a-z0-9]{{{ID_LENGTH}}})_([A-Za-z0-9]{{{SECRET_LENGTH}}})$")


def new_key_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_key(key_id: str) -> str:
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return f"{PREFIX}_{key_id}_{secret}"


def visible_prefix(key_id: str) -> str:
    return f"{PREFIX}_{key_id}_"


def key_id_of(key: str) -> str | None:
    """The id inside a well-formed key, or None."""
    match = KEY_PATTERN.match(key)
    return match.group(1) if match else None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def same_digest(key: str, stored_hex: str) -> bool:
    """Constant-time comparison of a presented key with a stored SHA-256."""
    return hmac.compare_digest(digest(key), stored_hex)
