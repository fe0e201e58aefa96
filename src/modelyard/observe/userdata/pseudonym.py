"""What an erased user becomes: ``erased:`` and a keyed hash of the user id.

The key is the install's session secret (``MODELYARD_SESSION_SECRET``, else
``home/session.secret``), so the hash cannot be reversed or recomputed from a guessed id
without it; the same user always gets the same value, so an erased user's requests stay
one unit for analyses that count users, and the audit record names the user by it."""

from __future__ import annotations

import hashlib
import hmac

from modelyard.observe.userdata.errors import InvalidUser

PREFIX = "erased:"
MAX_USER = 256  # the request log's column
# Set apart from the session cookies' MACs, which are keyed by the same secret.
DOMAIN = b"modelyard.user\x00"


def pseudonym(secret: bytes, user: str) -> str:
    digest = hmac.new(secret, DOMAIN + user.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:32]


def checked(user: str) -> str:
    """``user`` as the request log holds it, or InvalidUser."""
    if not user or len(user) > MAX_USER:
        raise InvalidUser(f"a user id is 1 to {MAX_USER} characters (got {len(user)})")
    return user


def is_erased(user: str) -> bool:
    return user.startswith(PREFIX)
