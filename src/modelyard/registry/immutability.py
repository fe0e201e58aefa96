"""Versions and alias moves are written once: the ORM refuses to update or delete them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from modelyard.registry.errors import ImmutableRecord
from modelyard.store.tables import AliasMoveRow, VersionRow


def _refuse(what: str) -> Any:
    def listener(_mapper: Any, _connection: Any, target: Any) -> None:
        raise ImmutableRecord(f"{what} {target.id} is immutable")

    return listener


for _table, _what in ((VersionRow, "model version"), (AliasMoveRow, "alias move")):
    event.listen(_table, "before_update", _refuse(_what))
    event.listen(_table, "before_delete", _refuse(_what))
