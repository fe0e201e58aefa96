"""Traffic policies in the store: read, checked against the registry, changed with history
and audit in one transaction. The API, the CLI, the console and the release controller all
call these; the request path only reads the routing table built from them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.engines import EngineError, Need
from modelyard.engines.kinds import engine_class
from modelyard.errors import ModelyardError
from modelyard.registry import Registry
from modelyard.registry.errors import RegistryError
from modelyard.registry.protocol import VersionOut
from modelyard.routing.protocol import (
    Cascade,
    TrafficPolicy,
    TrafficPolicyChange,
    TrafficPolicyOut,
)
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import (
    AliasRow,
    ModelRow,
    TrafficPolicyChangeRow,
    TrafficPolicyRow,
    VersionRow,
    utcnow,
)


class PolicyRefused(ModelyardError):
    """A traffic policy change that cannot be made; ``str()`` says why and what to do."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: str = "invalid_policy",
        param: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, param=param)


@dataclass(frozen=True)
class PolicySet:
    policies: dict[str, TrafficPolicy]
    marker: int


class TrafficPolicies:
    def __init__(self, store: Store, registry: Registry) -> None:
        self._store = store
        self._registry = registry

    def marker(self) -> int:
        with self._store.session() as session:
            return _marker(session)

    def load(self) -> PolicySet:
        with self._store.session() as session:
            rows = session.scalars(select(TrafficPolicyRow)).all()
            return PolicySet(
                {row.model: TrafficPolicy.model_validate(row.policy) for row in rows},
                _marker(session),
            )

    def list_policies(self) -> list[TrafficPolicyOut]:
        with self._store.session() as session:
            rows = session.scalars(select(TrafficPolicyRow).order_by(TrafficPolicyRow.model))
            return [_out(row) for row in rows]

    def get(self, model: str) -> TrafficPolicyOut | None:
        with self._store.session() as session:
            row = session.get(TrafficPolicyRow, model)
            return None if row is None else _out(row)

    def put(
        self,
        model: str,
        policy: TrafficPolicy,
        *,
        actor: str,
        reason: str = "",
        owner: str | None = None,
        session: Session | None = None,
    ) -> TrafficPolicyOut:
        """Set ``model``'s policy. A policy a rollout or experiment manages can only be
        changed by it (``owner``); others get a 409 saying which one to stop. With
        ``session``, the change joins the caller's transaction."""
        if policy.owner is not None and policy.owner != owner:
            raise PolicyRefused(
                "a policy's owner is set by the rollout or experiment that manages it; "
                "leave 'owner' out"
            )
        if session is not None:
            return self._put(session, model, policy, actor, reason, owner)
        with self._store.session() as own:
            return self._put(own, model, policy, actor, reason, owner)

    def _put(
        self,
        session: Session,
        model: str,
        policy: TrafficPolicy,
        actor: str,
        reason: str,
        owner: str | None,
    ) -> TrafficPolicyOut:
        self._check(session, model, policy)
        row = session.get(TrafficPolicyRow, model)
        before = None if row is None else TrafficPolicy.model_validate(row.policy)
        _check_owner(model, before, owner)
        data = policy.model_dump(mode="json")
        if row is None:
            row = TrafficPolicyRow(model=model, policy=data, updated_by=actor)
            session.add(row)
        else:
            row.policy = data
            row.updated_by = actor
        row.updated_at = utcnow()
        self._record(session, model, before, policy, actor, reason)
        session.flush()
        return _out(row)

    def delete(self, model: str, *, actor: str, reason: str = "", owner: str | None = None) -> None:
        with self._store.session() as session:
            row = session.get(TrafficPolicyRow, model)
            if row is None:
                raise PolicyRefused(
                    f"route '{model}' has no traffic policy", status=404, code="not_found"
                )
            before = TrafficPolicy.model_validate(row.policy)
            _check_owner(model, before, owner)
            session.delete(row)
            self._record(session, model, before, None, actor, reason)

    def history(self, model: str, limit: int = 100) -> list[TrafficPolicyChange]:
        with self._store.session() as session:
            rows = session.scalars(
                select(TrafficPolicyChangeRow)
                .where(TrafficPolicyChangeRow.model == model)
                .order_by(TrafficPolicyChangeRow.id.desc())
                .limit(min(limit, 1000))
            )
            return [
                TrafficPolicyChange(
                    id=row.id,
                    model=row.model,
                    before=None if row.before is None else TrafficPolicy.model_validate(row.before),
                    after=None if row.after is None else TrafficPolicy.model_validate(row.after),
                    actor=row.actor,
                    reason=row.reason,
                    at=row.at,
                )
                for row in rows
            ]

    # -- internals ------------------------------------------------------------------------

    def _check(self, session: Session, model: str, policy: TrafficPolicy) -> None:
        row = session.scalar(select(ModelRow).where(ModelRow.name == model))
        if row is None:
            raise PolicyRefused(
                f"model '{model}' does not exist (see `modelyard models list`)",
                status=404,
                code="not_found",
            )
        alias = session.scalar(
            select(AliasRow).where(
                AliasRow.model_id == row.id, AliasRow.name == policy.stable_alias
            )
        )
        if alias is None:
            raise PolicyRefused(
                f"model '{model}' has no alias '{policy.stable_alias}' for the stable variant; "
                f"set it first (`modelyard alias set {model} {policy.stable_alias} N`)"
            )
        numbers = set(
            session.scalars(select(VersionRow.number).where(VersionRow.model_id == row.id))
        )
        for number in [c.version for c in policy.candidates] + [s.version for s in policy.shadows]:
            if number not in numbers:
                raise PolicyRefused(f"model '{model}' has no version {number}")
        for fallback in policy.fallbacks:
            self._check_public_name(fallback.model)
        if policy.combine is not None:
            self._check_combination(policy)
        if policy.live_judge is not None:
            self._check_live_judge(session, policy.live_judge.judge)

    def _check_live_judge(self, session: Session, judge: str) -> None:
        """The judge resolves now and answers chat (it is asked a rubric prompt)."""
        param = "policy.live_judge.judge"
        version = self._check_public_name(judge, "live_judge.judge", param)
        task = session.scalar(select(ModelRow.task).where(ModelRow.name == version.model))
        if task != "chat":
            raise PolicyRefused(
                f"live_judge.judge '{judge}' is a {task} model; the judge must be a chat model",
                param=param,
            )

    def _check_combination(self, policy: TrafficPolicy) -> None:
        """Each member resolves; a logprobs cascade's small model can give logprobs."""
        combine = policy.combine
        assert combine is not None
        fields = type(combine).model_fields
        names = [n for n in ("small", "large", "targets", "target", "judge") if n in fields]
        for name in names:
            value = getattr(combine, name)
            for member in value if isinstance(value, list) else [value]:
                self._check_public_name(member, f"combine.{name}", f"policy.combine.{name}")
        if isinstance(combine, Cascade) and combine.confidence.min_probability is not None:
            small = self._check_public_name(combine.small, "combine.small", "policy.combine.small")
            try:
                unable = engine_class(small.engine_kind).unable(
                    (Need("logprobs", "logprobs"),), small.parameters
                )
            except EngineError as error:
                raise PolicyRefused(f"combine.small '{combine.small}': {error}") from None
            if unable is not None:
                raise PolicyRefused(
                    f"combine.small '{combine.small}' ({small.name}) cannot give token "
                    f"logprobs: {unable[1]}; use a validator (valid_json, pattern or labels) "
                    "as its confidence instead",
                    param="policy.combine.confidence.min_probability",
                )

    def _check_public_name(
        self, name: str, role: str = "fallback", param: str | None = None
    ) -> VersionOut:
        """The version a public name resolves to now; ``role`` names it in a refusal,
        ``param`` is the field a refusal names."""
        model, _, rest = name.partition("@")
        try:
            if rest:
                if not rest.isdigit():
                    raise PolicyRefused(
                        f"{role} '{name}': the version after '@' is a number", param=param
                    )
                return self._registry.version(model, int(rest))
            base, _, alias = name.partition(":")
            detail = self._registry.model(base)
        except RegistryError as error:
            raise PolicyRefused(f"{role} '{name}': {error}", param=param) from None
        wanted = alias or "production"
        for found in detail.aliases:
            if found.name == wanted:
                return self._registry.version(base, found.version)
        raise PolicyRefused(f"{role} '{name}': model '{base}' has no alias '{wanted}'", param=param)

    @staticmethod
    def _record(
        session: Session,
        model: str,
        before: TrafficPolicy | None,
        after: TrafficPolicy | None,
        actor: str,
        reason: str,
    ) -> None:
        before_data = None if before is None else before.model_dump(mode="json")
        after_data = None if after is None else after.model_dump(mode="json")
        session.add(
            TrafficPolicyChangeRow(
                model=model,
                before=before_data,
                after=after_data,
                actor=actor,
                reason=reason,
                at=utcnow(),
            )
        )
        append_audit(
            session,
            actor=actor,
            action="route.policy" if after is not None else "route.policy.delete",
            target=model,
            before=before_data,
            after=None if after_data is None else {**after_data, "reason": reason},
        )


def _check_owner(model: str, current: TrafficPolicy | None, owner: str | None) -> None:
    if current is not None and current.owner is not None and current.owner != owner:
        raise PolicyRefused(
            f"route '{model}' is managed by {current.owner.replace(':', ' ')}; "
            "abort or stop it first",
            status=409,
            code="conflict",
        )


def _marker(session: Session) -> int:
    return int(session.scalar(select(func.max(TrafficPolicyChangeRow.id))) or 0)


def _out(row: TrafficPolicyRow) -> TrafficPolicyOut:
    return TrafficPolicyOut(
        model=row.model,
        policy=TrafficPolicy.model_validate(row.policy),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
