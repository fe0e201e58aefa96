"""Errors of the guard's services (the API maps them to OpenAI-shaped responses)."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class GuardError(ModelyardError):
    """A refused guard operation; ``status`` is the HTTP status the API answers with."""

    status = 400
    code = "invalid_request"


class KeyNotFound(GuardError):
    status = 404
    code = "key_not_found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key with id '{key_id}'")


class InvalidKeyChange(GuardError):
    code = "invalid_key_change"


class InvalidPolicy(GuardError):
    code = "invalid_policy"


class PolicyNotFound(GuardError):
    status = 404
    code = "policy_not_found"

    def __init__(self, route: str) -> None:
        super().__init__(f"no policy for route '{route}'")
