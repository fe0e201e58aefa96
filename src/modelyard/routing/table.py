"""The routing table: an immutable snapshot of aliases, swapped whole when the registry changes.

Public names: ``<model>`` is the model's ``production`` alias, ``<model>:<alias>`` another
alias, ``<model>@<n>`` pins version ``n``. Resolving never touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.engines import EngineSpec
from modelyard.registry.protocol import VersionOut
from modelyard.registry.service import RoutingEntry, RoutingState

DEFAULT_ALIAS = "production"


class ModelNotRoutable(LookupError):
    """No version answers to this public name."""

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
    marker: tuple[int, int] = (0, 0)


class RoutingTable:
    """Holds the current snapshot; ``replace`` swaps it atomically (one reference write)."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()

    @property
    def marker(self) -> tuple[int, int]:
        return self._snapshot.marker

    def replace(self, state: RoutingState) -> None:
        self._snapshot = Snapshot(
            aliases={(e.model, e.alias): e for e in state.entries},
            versions={(v.model, v.number): v for v in state.versions},
            tasks=dict(state.tasks),
            marker=state.marker,
        )

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
        return list(seen.values())
