"""What can go wrong in the registry; each carries a message that says what to do."""


class RegistryError(Exception):
    """Base of registry errors; ``str()`` is a user-facing message."""


class ModelNotFound(RegistryError):
    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' does not exist (see `modelyard models list`)")
        self.name = name


class VersionNotFound(RegistryError):
    def __init__(self, model: str, number: int) -> None:
        super().__init__(f"model '{model}' has no version {number}")


class AliasNotFound(RegistryError):
    def __init__(self, model: str, alias: str) -> None:
        super().__init__(f"model '{model}' has no alias '{alias}'")


class InvalidRegistration(RegistryError):
    """The request to register or move something is malformed or conflicts."""


class ImmutableRecord(RegistryError):
    """A version or an alias move was about to be changed; both are append-only."""
