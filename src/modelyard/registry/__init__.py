"""The registry: models, immutable versions, aliases and their append-only history."""

from modelyard.registry.errors import (
    AliasNotFound,
    InvalidRegistration,
    ModelNotFound,
    RegistryError,
    VersionNotFound,
)
from modelyard.registry.service import Registry

__all__ = [
    "AliasNotFound",
    "InvalidRegistration",
    "ModelNotFound",
    "Registry",
    "RegistryError",
    "VersionNotFound",
]
