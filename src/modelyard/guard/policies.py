"""Per-route guard policies: stored, audited, and held in memory for the request path."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.guard.errors import InvalidPolicy, PolicyNotFound
from modelyard.guard.protocol import RoutePolicy, RoutePolicyOut
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import RoutePolicyRow, utcnow

ANY_ROUTE = "*"
PolicyMarker = tuple[int, datetime | None]


class PolicyService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def list_policies(self) -> list[RoutePolicyOut]:
        with self._store.session() as session:
            rows = session.scalars(select(RoutePolicyRow).order_by(RoutePolicyRow.route))
            return [_out(row) for row in rows]

    def get(self, route: str) -> RoutePolicyOut:
        with self._store.session() as session:
            row = session.get(RoutePolicyRow, route)
            if row is None:
                raise PolicyNotFound(route)
            return _out(row)

    def set(self, route: str, policy: RoutePolicy, actor: str) -> RoutePolicyOut:
        route = route.strip()
        if not route or len(route) > 128:
            raise InvalidPolicy("a route is a public model name (1 to 128 characters) or '*'")
        now = utcnow()
        with self._store.session() as session:
            row = session.get(RoutePolicyRow, route)
            before = dict(row.policy) if row is not None else None
            if row is None:
                row = RoutePolicyRow(route=route, policy={}, updated_by=actor)
                session.add(row)
            row.policy = policy.model_dump(mode="json")
            row.updated_at = now
            row.updated_by = actor
            session.flush()
            append_audit(
                session,
                actor=actor,
                action="policy.set",
                target=route,
                before=before,
                after=row.policy,
            )
            return _out(row)

    def delete(self, route: str, actor: str) -> None:
        with self._store.session() as session:
            row = session.get(RoutePolicyRow, route)
            if row is None:
                raise PolicyNotFound(route)
            append_audit(
                session, actor=actor, action="policy.delete", target=route, before=row.policy
            )
            session.delete(row)

    def marker(self) -> PolicyMarker:
        with self._store.session() as session:
            return _marker(session)

    def snapshot(self) -> tuple[PolicyMarker, dict[str, RoutePolicy]]:
        with self._store.session() as session:
            rows = session.scalars(select(RoutePolicyRow))
            return _marker(session), {row.route: RoutePolicy(**row.policy) for row in rows}


class PolicyBook:
    """The policies in force: a route's own, else the ``*`` policy, else the default."""

    def __init__(self, default: RoutePolicy) -> None:
        self._default = default
        self._policies: dict[str, RoutePolicy] = {}
        self.marker: PolicyMarker | None = None

    def replace(self, marker: PolicyMarker, policies: dict[str, RoutePolicy]) -> None:
        self._policies = policies
        self.marker = marker

    @property
    def size(self) -> int:
        return len(self._policies)

    def for_route(self, route: str) -> RoutePolicy:
        policies = self._policies
        return policies.get(route) or policies.get(ANY_ROUTE) or self._default


def _marker(session: Session) -> PolicyMarker:
    count, latest = session.execute(
        select(func.count(), func.max(RoutePolicyRow.updated_at)).select_from(RoutePolicyRow)
    ).one()
    return int(count), latest


def _out(row: RoutePolicyRow) -> RoutePolicyOut:
    return RoutePolicyOut(
        route=row.route, updated_at=row.updated_at, updated_by=row.updated_by, **row.policy
    )
