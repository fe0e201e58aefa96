"""Registry operations. The API, the CLI and the console all call these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.engines.base import EngineError
from modelyard.engines.kinds import check_parameters
from modelyard.registry import immutability as _immutability  # noqa: F401  (installs guards)
from modelyard.registry.artifacts import pin_artifact
from modelyard.registry.errors import (
    AliasNotFound,
    InvalidRegistration,
    ModelNotFound,
    VersionNotFound,
)
from modelyard.registry.protocol import (
    AliasMoveOut,
    AliasOut,
    ModelDetail,
    ModelOut,
    Task,
    VersionCreate,
    VersionOut,
    check_name,
    version_name,
)
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import AliasMoveRow, AliasRow, ModelRow, VersionRow, utcnow


@dataclass(frozen=True)
class RoutingEntry:
    """One alias and the version it points to, as the routing snapshot needs it."""

    model: str
    task: Task
    alias: str
    version: VersionOut


@dataclass(frozen=True)
class RoutingState:
    entries: list[RoutingEntry]
    versions: list[VersionOut]
    tasks: dict[str, str]
    marker: tuple[int, int]


def _checked(value: str, what: str) -> str:
    try:
        return check_name(value, what)
    except ValueError as error:
        raise InvalidRegistration(str(error)) from None


def _checked_parameters(spec: VersionCreate) -> None:
    """Refuse parameters the engine kind does not accept, or a kind that is not installed."""
    try:
        check_parameters(spec.engine_kind, spec.parameters)
    except EngineError as error:
        raise InvalidRegistration(str(error)) from None


class Registry:
    """Models, immutable versions, aliases and the append-only alias history."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- models ---------------------------------------------------------------------------

    def create_model(self, name: str, task: Task = "chat", description: str = "") -> ModelOut:
        _checked(name, "model name")
        try:
            with self._store.session() as session:
                row = ModelRow(name=name, task=task, description=description)
                session.add(row)
                session.flush()
                return self._model_out(session, row)
        except IntegrityError:
            raise InvalidRegistration(f"model '{name}' already exists") from None

    def list_models(self) -> list[ModelOut]:
        with self._store.session() as session:
            rows = session.scalars(select(ModelRow).order_by(ModelRow.name)).all()
            return [self._model_out(session, row) for row in rows]

    def model(self, name: str) -> ModelDetail:
        with self._store.session() as session:
            row = self._model_row(session, name)
            base = self._model_out(session, row)
            versions = session.scalars(
                select(VersionRow).where(VersionRow.model_id == row.id).order_by(VersionRow.number)
            ).all()
            aliases_by_version: dict[int, list[str]] = {}
            for alias in base.aliases:
                aliases_by_version.setdefault(alias.version, []).append(alias.name)
            return ModelDetail(
                **base.model_dump(),
                versions=[
                    self._version_out(row.name, v, aliases_by_version.get(v.number, []))
                    for v in versions
                ],
                history=self._history(session, row),
            )

    # -- versions -------------------------------------------------------------------------

    def add_version(self, model: str, spec: VersionCreate, actor: str) -> VersionOut:
        """Register a new immutable version, creating the model when it does not exist yet."""
        _checked(model, "model name")
        uri, sha256 = pin_artifact(spec.artifact_uri)
        _checked_parameters(spec)
        with self._store.session() as session:
            row = session.scalar(select(ModelRow).where(ModelRow.name == model))
            if row is None:
                row = ModelRow(name=model, task=spec.task, description="")
                session.add(row)
                session.flush()
            latest = session.scalar(
                select(func.max(VersionRow.number)).where(VersionRow.model_id == row.id)
            )
            version = VersionRow(
                model_id=row.id,
                number=(latest or 0) + 1,
                engine_kind=spec.engine_kind,
                artifact_uri=uri,
                artifact_sha256=sha256,
                parameters=spec.parameters,
                created_by=spec.created_by or actor,
                notes=spec.notes,
            )
            session.add(version)
            session.flush()
            out = self._version_out(model, version, [])
            append_audit(
                session,
                actor=actor,
                action="version.create",
                target=version_name(model, out.number),
                after=out.model_dump(mode="json"),
            )
            return out

    def version(self, model: str, number: int) -> VersionOut:
        with self._store.session() as session:
            row = self._model_row(session, model)
            version = self._version_row(session, row, number)
            aliases = session.scalars(
                select(AliasRow.name).where(AliasRow.version_id == version.id)
            ).all()
            return self._version_out(model, version, list(aliases))

    # -- aliases --------------------------------------------------------------------------

    def set_alias(
        self, model: str, alias: str, number: int, *, actor: str, reason: str = ""
    ) -> AliasMoveOut:
        """Point ``alias`` at version ``number`` and record the move."""
        _checked(alias, "alias name")
        with self._store.session() as session:
            row = self._model_row(session, model)
            target = self._version_row(session, row, number)
            return self._move(session, row, alias, target, actor=actor, reason=reason)

    def rollback(
        self,
        model: str,
        alias: str,
        *,
        actor: str,
        reason: str = "rollback",
        to_version: int | None = None,
    ) -> AliasMoveOut:
        """Move ``alias`` back to the version it pointed to before its last move.

        Like ``kubectl rollout undo``, rolling back twice returns to where it started;
        ``to_version`` picks an explicit earlier version instead.
        """
        with self._store.session() as session:
            row = self._model_row(session, model)
            if to_version is not None:
                target = self._version_row(session, row, to_version)
            else:
                last = session.scalar(
                    select(AliasMoveRow)
                    .where(AliasMoveRow.model_id == row.id, AliasMoveRow.alias == alias)
                    .order_by(AliasMoveRow.id.desc())
                    .limit(1)
                )
                if last is None:
                    raise AliasNotFound(model, alias)
                if last.from_version_id is None:
                    raise InvalidRegistration(
                        f"alias '{alias}' of model '{model}' has never moved: "
                        "there is no previous version to roll back to"
                    )
                target = session.get_one(VersionRow, last.from_version_id)
            return self._move(session, row, alias, target, actor=actor, reason=reason)

    def history(self, model: str, alias: str | None = None) -> list[AliasMoveOut]:
        with self._store.session() as session:
            row = self._model_row(session, model)
            moves = self._history(session, row, alias)
            if alias is not None and not moves:
                raise AliasNotFound(model, alias)
            return moves

    def alias_at(self, model: str, alias: str, at: datetime) -> int | None:
        """The version number ``alias`` pointed to at time ``at`` (None if it did not exist)."""
        with self._store.session() as session:
            row = self._model_row(session, model)
            move = session.scalar(
                select(AliasMoveRow)
                .where(
                    AliasMoveRow.model_id == row.id,
                    AliasMoveRow.alias == alias,
                    AliasMoveRow.moved_at <= at,
                )
                .order_by(AliasMoveRow.moved_at.desc(), AliasMoveRow.id.desc())
                .limit(1)
            )
            if move is None:
                return None
            return session.get_one(VersionRow, move.to_version_id).number

    # -- what routing reads ---------------------------------------------------------------

    def change_marker(self) -> tuple[int, int]:
        """Cheap fingerprint of routing-relevant state: (last alias move, last version)."""
        with self._store.session() as session:
            return self._marker(session)

    def routing_state(self) -> RoutingState:
        """Everything the routing table holds, read in one transaction."""
        with self._store.session() as session:
            marker = self._marker(session)
            models = {row.id: row for row in session.scalars(select(ModelRow)).all()}
            versions = session.scalars(select(VersionRow)).all()
            outs = {v.id: self._version_out(models[v.model_id].name, v, []) for v in versions}
            aliases = session.scalars(select(AliasRow).order_by(AliasRow.name)).all()
            return RoutingState(
                entries=[
                    RoutingEntry(
                        model=models[a.model_id].name,
                        task=cast(Task, models[a.model_id].task),
                        alias=a.name,
                        version=outs[a.version_id],
                    )
                    for a in aliases
                ],
                versions=list(outs.values()),
                tasks={m.name: m.task for m in models.values()},
                marker=marker,
            )

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _marker(session: Session) -> tuple[int, int]:
        moves = session.scalar(select(func.max(AliasMoveRow.id))) or 0
        versions = session.scalar(select(func.max(VersionRow.id))) or 0
        return int(moves), int(versions)

    def _move(
        self,
        session: Session,
        model: ModelRow,
        alias: str,
        target: VersionRow,
        *,
        actor: str,
        reason: str,
    ) -> AliasMoveOut:
        now = utcnow()
        current = session.scalar(
            select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.name == alias)
        )
        from_id = current.version_id if current else None
        if current is None:
            session.add(
                AliasRow(model_id=model.id, name=alias, version_id=target.id, updated_at=now)
            )
        else:
            current.version_id = target.id
            current.updated_at = now
        move = AliasMoveRow(
            model_id=model.id,
            alias=alias,
            from_version_id=from_id,
            to_version_id=target.id,
            actor=actor,
            reason=reason,
            moved_at=now,
        )
        session.add(move)
        session.flush()
        out = self._move_out(session, model.name, move)
        append_audit(
            session,
            actor=actor,
            action="alias.move",
            target=f"{model.name}:{alias}",
            before={"version": out.from_version},
            after={"version": out.to_version, "reason": reason},
        )
        return out

    def _model_row(self, session: Session, name: str) -> ModelRow:
        row = session.scalar(select(ModelRow).where(ModelRow.name == name))
        if row is None:
            raise ModelNotFound(name)
        return row

    def _version_row(self, session: Session, model: ModelRow, number: int) -> VersionRow:
        row = session.scalar(
            select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.number == number)
        )
        if row is None:
            raise VersionNotFound(model.name, number)
        return row

    def _history(
        self, session: Session, model: ModelRow, alias: str | None = None
    ) -> list[AliasMoveOut]:
        query = select(AliasMoveRow).where(AliasMoveRow.model_id == model.id)
        if alias is not None:
            query = query.where(AliasMoveRow.alias == alias)
        moves = session.scalars(query.order_by(AliasMoveRow.id)).all()
        return [self._move_out(session, model.name, move) for move in moves]

    def _model_out(self, session: Session, row: ModelRow) -> ModelOut:
        aliases = session.execute(
            select(AliasRow, VersionRow.number)
            .join(VersionRow, VersionRow.id == AliasRow.version_id)
            .where(AliasRow.model_id == row.id)
            .order_by(AliasRow.name)
        ).all()
        latest = session.scalar(
            select(func.max(VersionRow.number)).where(VersionRow.model_id == row.id)
        )
        return ModelOut(
            name=row.name,
            task=cast(Task, row.task),
            description=row.description,
            created_at=row.created_at,
            aliases=[
                AliasOut(model=row.name, name=a.name, version=number, updated_at=a.updated_at)
                for a, number in aliases
            ],
            latest_version=latest,
        )

    @staticmethod
    def _version_out(model: str, row: VersionRow, aliases: list[str]) -> VersionOut:
        return VersionOut(
            model=model,
            number=row.number,
            engine_kind=row.engine_kind,
            artifact_uri=row.artifact_uri,
            artifact_sha256=row.artifact_sha256,
            parameters=dict(row.parameters),
            created_at=row.created_at,
            created_by=row.created_by,
            notes=row.notes,
            aliases=sorted(aliases),
        )

    @staticmethod
    def _move_out(session: Session, model: str, move: AliasMoveRow) -> AliasMoveOut:
        def number(version_id: int | None) -> int | None:
            return None if version_id is None else session.get_one(VersionRow, version_id).number

        to_number = number(move.to_version_id)
        assert to_number is not None
        return AliasMoveOut(
            id=move.id,
            model=model,
            alias=move.alias,
            from_version=number(move.from_version_id),
            to_version=to_number,
            actor=move.actor,
            reason=move.reason,
            moved_at=move.moved_at,
        )
