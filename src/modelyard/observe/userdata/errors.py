"""Errors of a user's data on request (the API answers them in OpenAI's error shape)."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class UserNotFound(ModelyardError, LookupError):
    status = 404
    code = "user_not_found"
    param = "user"

    def __init__(self, user: str) -> None:
        super().__init__(
            f"no logged request names the user '{user}' (the `user` field a client sends, "
            "matched exactly); an erased user's requests carry 'erased:…' instead"
        )


class InvalidUser(ModelyardError, ValueError):
    status = 400
    code = "invalid_user"
    param = "user"
