"""Roles and the access each route declares.

Roles are not a ladder: a viewer reads everything but cannot call a model, a developer
calls models but reads only its own usage, logs and feedback.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    admin = "admin"
    developer = "developer"
    viewer = "viewer"


class Access(StrEnum):
    """What a route does, declared on every route that needs a key."""

    infer = "infer"  # call a model (/v1/...)
    read = "read"  # read anything that is not a secret
    read_own = "read_own"  # read what belongs to the caller's key (all of it for readers)
    admin = "admin"  # change state: keys, aliases, versions, policies


GRANTS: MappingProxyType[Role, frozenset[Access]] = MappingProxyType(
    {
        Role.admin: frozenset(Access),
        Role.developer: frozenset({Access.infer, Access.read_own}),
        Role.viewer: frozenset({Access.read, Access.read_own}),
    }
)


def allows(role: Role, needed: frozenset[Access]) -> bool:
    """A route declaring several accesses admits a role holding any of them."""
    return bool(GRANTS[role] & needed)


def sees_all(role: Role) -> bool:
    """Whether ``read_own`` routes show this role every key's rows, not only its own."""
    return Access.read in GRANTS[role]
