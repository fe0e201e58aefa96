"""What rollouts and experiments have in common: each is a stored subject read by its key
(a rollout's id, an experiment's name) with its measurements and events, and each takes
over one route's traffic policy while it runs and gives the prior policy back when done."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.registry import Registry
from modelyard.registry.errors import RegistryError
from modelyard.release.errors import ReleaseError
from modelyard.release.events import events_of, measurements_of
from modelyard.release.protocol import ExperimentOut, MeasurementOut, ReleaseEventOut, RolloutOut
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.protocol import TrafficPolicy
from modelyard.store import Store
from modelyard.store.tables import ExperimentRow, RolloutRow

Key = TypeVar("Key", int, str)
Row = TypeVar("Row", RolloutRow, ExperimentRow)
Out = TypeVar("Out", RolloutOut, ExperimentOut)


class ReleaseSubjects(Generic[Key, Row, Out]):
    subject: ClassVar[str]  # "rollout" or "experiment": how events and measurements name it

    def __init__(self, store: Store, registry: Registry, policies: TrafficPolicies) -> None:
        self._store = store
        self._registry = registry
        self._policies = policies

    # -- reading --------------------------------------------------------------------------

    def get(self, key: Key) -> Out:
        with self._store.session() as session:
            return self._out(self._row(session, key))

    def recent(self, model: str | None = None, limit: int = 100) -> list[Out]:
        """The newest first, of one model or of all."""
        table = self._table()
        query = select(table).order_by(table.id.desc()).limit(min(limit, 1000))
        if model is not None:
            query = query.where(table.model == model)
        with self._store.session() as session:
            return [self._out(row) for row in session.scalars(query)]

    def measurements(self, key: Key) -> list[MeasurementOut]:
        return measurements_of(self._store, self.subject, self.get(key).id)

    def events(self, key: Key) -> list[ReleaseEventOut]:
        return events_of(self._store, self.subject, self.get(key).id)

    # -- what each kind says --------------------------------------------------------------

    def _table(self) -> type[Row]:
        raise NotImplementedError

    def _row(self, session: Session, key: Key) -> Row:
        raise NotImplementedError

    def _out(self, row: Row) -> Out:
        raise NotImplementedError

    # -- the route it takes over ----------------------------------------------------------

    def _aliases(self, model: str, versions: Iterable[int]) -> dict[str, int]:
        """The model's aliases and their versions, once the model and ``versions`` exist."""
        try:
            detail = self._registry.model(model)
            for version in versions:
                self._registry.version(model, version)
        except RegistryError as error:
            raise ReleaseError(str(error), status=404, code="not_found") from None
        return {a.name: a.version for a in detail.aliases}

    def _free_policy(self, model: str) -> TrafficPolicy | None:
        """The route's policy (None: it has none) if no rollout or experiment manages it."""
        prior = self._policies.get(model)
        if prior is not None and prior.policy.owner is not None:
            raise ReleaseError(
                f"route '{model}' is managed by {prior.policy.owner.replace(':', ' ')}; "
                "abort or stop it first",
                status=409,
                code="conflict",
            )
        return None if prior is None else prior.policy

    def _restore_policy(self, subject: Out, actor: str, why: str) -> None:
        """The route's policy back to what it was before ``subject`` took it over, unless
        it is no longer the subject's to give back."""
        owner = f"{self.subject}:{subject.id}"
        with self._store.session() as session:
            row = session.get(self._table(), subject.id)
            prior = None if row is None else row.spec.get("prior_policy")
        current = self._policies.get(subject.model)
        if current is None or current.policy.owner != owner:
            return
        if prior is None:
            self._policies.delete(subject.model, actor=actor, reason=why, owner=owner)
        else:
            self._policies.put(
                subject.model,
                TrafficPolicy.model_validate(prior),
                actor=actor,
                reason=why,
                owner=owner,
            )


def stored_spec(spec: BaseModel, prior: TrafficPolicy | None) -> dict[str, Any]:
    """A subject's spec as stored: with the policy its route had, to give back at the end."""
    return {
        **spec.model_dump(mode="json"),
        "prior_policy": None if prior is None else prior.model_dump(mode="json"),
    }
