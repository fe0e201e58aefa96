"""What can go wrong in the registry; each carries a message that says what to do."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class RegistryError(ModelyardError):
    """Base of registry errors; ``str()`` is a user-facing message. Any other than the
    ones below conflicts with what the registry holds."""

    status = 409
    code = "conflict"


class ModelNotFound(RegistryError):
    status = 404
    code = "not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' does not exist (see `modelyard models list`)")
        self.name = name


class VersionNotFound(RegistryError):
    status = 404
    code = "not_found"

    def __init__(self, model: str, number: int) -> None:
        super().__init__(f"model '{model}' has no version {number}")


class AliasNotFound(RegistryError):
    status = 404
    code = "not_found"

    def __init__(self, model: str, alias: str) -> None:
        super().__init__(f"model '{model}' has no alias '{alias}'")


class InvalidRegistration(RegistryError):
    """The request to register or move something is malformed or conflicts."""

    status = 400
    code = "invalid_registration"


class ImmutableRecord(RegistryError):
    """A version or an alias move was about to be changed; both are append-only."""
