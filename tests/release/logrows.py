"""Request-log rows for the release tests: a served chat request of route ``chat``, with
whatever a test sets on top."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelyard.store.tables import RequestLogRow


def served(request_id: str, at: datetime, **fields: Any) -> RequestLogRow:
    values: dict[str, Any] = {
        "key_id": "k",
        "endpoint": "chat.completions",
        "route": "chat",
        "version": "chat@1",
        "status": 200,
        "latency_ms": 10.0,
        **fields,
    }
    return RequestLogRow(id=request_id, at=at, day=at.date().isoformat(), **values)
