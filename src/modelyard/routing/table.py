"""The routing table: an immutable snapshot of aliases, swapped whole when the registry changes.

Public names: ``<model>`` is the model's ``production`` alias, ``<model>:<alias>`` another
alias, ``<model>@<n>`` pins version ``n``. Resolving never touches the database.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from modelyard.engines import EngineSpec
from modelyard.errors import ModelyardError
from modelyard.registry.protocol import VersionOut
from modelyard.registry.service import RoutingEntry, RoutingState
from modelyard.routing.protocol import BestOfN, BreakerSettings, Cascade, TrafficPolicy, Vote

DEFAULT_ALIAS = "production"


class ModelNotRoutable(ModelyardError, LookupError):
    """No version answers to this public name."""

    status = 404
    code = "model_not_found"
    param = "model"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The model '{name}' does not exist or has no '{DEFAULT_ALIAS}' alias; "
            "GET /v1/models lists the models you can use."
        )
        self.name = name


def route_of(public_name: str) -> str:
    """The route of a public name: the model it names (``chat:canary`` -> ``chat``)."""
    return public_name.partition("@")[0].partition(":")[0]


@dataclass(frozen=True)
class Target:
    """Where a request goes: the public name asked for and the version serving it."""

    public_name: str
    model: str
    task: str
    alias: str | None
    version: VersionOut
    variant: str | None = None  # the traffic variant (stable, candidate, ...) under a policy

    @cached_property
    def name(self) -> str:
        """The version's name, ``model@n`` (what logs and breakers key on); read several
        times per request, so computed once (a frozen dataclass still has a ``__dict__``)."""
        return self.version.name

    @property
    def spec(self) -> EngineSpec:
        v = self.version
        return EngineSpec(
            model=v.model,
            version=v.number,
            kind=v.engine_kind,
            artifact_uri=v.artifact_uri,
            parameters=dict(v.parameters),
        )


@dataclass(frozen=True)
class Snapshot:
    aliases: dict[tuple[str, str], RoutingEntry] = field(default_factory=dict)
    versions: dict[tuple[str, int], VersionOut] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)
    policies: dict[str, TrafficPolicy] = field(default_factory=dict)
    marker: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class Fallback:
    target: Target
    timeout_s: float | None


@dataclass(frozen=True)
class Combination:
    """A combination route's policy and its members' targets, in the policy's order
    (cascade: small, large; vote: the voters; best-of-n: the target, the judge)."""

    policy: Cascade | Vote | BestOfN
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Plan:
    """Where one request goes: the variant it was assigned, what to try when that fails,
    and the versions that get a copy of it."""

    primary: Target
    timeout_s: float | None = None
    fallbacks: tuple[Fallback, ...] = ()
    shadows: tuple[Target, ...] = ()
    breaker: BreakerSettings | None = None
    user: str | None = None  # the end user the variant was assigned for, if known
    combination: Combination | None = None  # answered by several models (``routing.combine``)


def bucket(salt: str, user: str) -> float:
    """A user's fixed place in [0, 1) for a salt: the same user gets the same variant for
    as long as the policy's salt (one rollout or experiment) stays."""
    digest = hashlib.blake2b(f"{salt}\x00{user}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign(policy: TrafficPolicy, place: float) -> tuple[str, int | None]:
    """The variant at ``place``: candidates take consecutive slices from 0 in their order,
    the stable variant the rest. Growing a candidate's weight only moves users from stable
    to it, never back (a canary's users stay on the canary as it grows)."""
    edge = 0.0
    for candidate in policy.candidates:
        edge += candidate.weight / 100
        if place < edge:
            return candidate.name, candidate.version
    return policy.stable_variant, None


class RoutingTable:
    """Holds the current snapshot; ``replace`` swaps it atomically (one reference write)."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()

    @property
    def marker(self) -> tuple[int, int, int]:
        return self._snapshot.marker

    def replace(
        self,
        state: RoutingState,
        policies: dict[str, TrafficPolicy] | None = None,
        policy_marker: int = 0,
    ) -> None:
        self._snapshot = Snapshot(
            aliases={(e.model, e.alias): e for e in state.entries},
            versions={(v.model, v.number): v for v in state.versions},
            tasks=dict(state.tasks),
            policies=dict(policies or {}),
            marker=(*state.marker, policy_marker),
        )

    def models(self) -> frozenset[str]:
        return frozenset(self._snapshot.tasks)

    def version_numbers(self, model: str) -> list[int]:
        return sorted(n for m, n in self._snapshot.versions if m == model)

    def policy(self, model: str) -> TrafficPolicy | None:
        return self._snapshot.policies.get(model)

    def plan(
        self,
        public_name: str,
        user: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Plan:
        """Resolve a request's model under its route's traffic policy. Only the plain model
        name follows the policy; ``m:alias`` and ``m@n`` pin what they name. The end user
        (``user``, else the policy's sticky header among ``headers``) keeps a user on one
        variant."""
        snapshot = self._snapshot
        policy = snapshot.policies.get(public_name)
        if policy is None:
            return Plan(self.resolve(public_name), user=user)
        if user is None and headers is not None:
            user = headers.get(policy.sticky_header) or None
        if policy.combine is not None:
            combination = self._combination(policy.combine)
            return Plan(combination.targets[0], user=user, combination=combination)
        entry = snapshot.aliases.get((public_name, policy.stable_alias))
        if entry is None:
            raise ModelNotRoutable(public_name)
        place = bucket(policy.salt, user) if user else random.random()
        variant, number = assign(policy, place)
        version = entry.version
        if number is not None:
            version = snapshot.versions.get((public_name, number), version)
        primary = Target(public_name, public_name, entry.task, entry.alias, version, variant)
        fallbacks = []
        for fallback in policy.fallbacks:
            try:
                target = self.resolve(fallback.model)
            except ModelNotRoutable:
                continue
            fallbacks.append(Fallback(target, fallback.timeout_s))
        shadows = [
            Target(public_name, public_name, entry.task, None, shadow, "shadow")
            for s in policy.shadows
            if random.random() * 100 < s.share
            and (shadow := snapshot.versions.get((public_name, s.version))) is not None
        ]
        return Plan(
            primary,
            timeout_s=policy.timeout_s if policy.fallbacks else None,
            fallbacks=tuple(fallbacks),
            shadows=tuple(shadows),
            breaker=policy.breaker if policy.fallbacks else None,
            user=user,
        )

    def _combination(self, policy: Cascade | Vote | BestOfN) -> Combination:
        """The members' targets; a member that no longer resolves makes the route's
        requests a 404 naming it."""
        return Combination(policy, tuple(self.resolve(name) for name in policy.members))

    def resolve(self, public_name: str) -> Target:
        snapshot = self._snapshot
        if "@" in public_name:
            model, _, number = public_name.partition("@")
            version = snapshot.versions.get((model, int(number))) if number.isdigit() else None
            if version is None:
                raise ModelNotRoutable(public_name)
            return Target(public_name, model, snapshot.tasks[model], None, version)
        model, _, alias = public_name.partition(":")
        entry = snapshot.aliases.get((model, alias or DEFAULT_ALIAS))
        if entry is None:
            raise ModelNotRoutable(public_name)
        return Target(public_name, model, entry.task, entry.alias, entry.version)

    def public_models(self) -> list[Target]:
        """Models served under their plain name (those with a ``production`` alias)."""
        snapshot = self._snapshot
        return [
            Target(e.model, e.model, e.task, e.alias, e.version)
            for (model, alias), e in sorted(snapshot.aliases.items())
            if alias == DEFAULT_ALIAS
        ]

    def aliased_specs(self) -> list[EngineSpec]:
        """Every version some alias points to: what the server loads ahead of traffic."""
        seen: dict[tuple[str, int], EngineSpec] = {}
        for entry in self._snapshot.aliases.values():
            target = Target(entry.model, entry.model, entry.task, entry.alias, entry.version)
            seen[(entry.model, entry.version.number)] = target.spec
        for model, policy in self._snapshot.policies.items():
            numbers = [c.version for c in policy.candidates if c.weight > 0]
            numbers += [s.version for s in policy.shadows]
            for number in numbers:
                version = self._snapshot.versions.get((model, number))
                if version is not None:
                    task = self._snapshot.tasks.get(model, "chat")
                    seen[(model, number)] = Target(model, model, task, None, version).spec
            for name in policy.combine.members if policy.combine is not None else ():
                try:
                    member = self.resolve(name)
                except ModelNotRoutable:
                    continue
                seen[(member.model, member.version.number)] = member.spec
        return list(seen.values())
