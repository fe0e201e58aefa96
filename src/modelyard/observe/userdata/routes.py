"""A user's data on request, JSON API (admin only): ``/api/users/{user}/summary``,
``/export`` and ``/erase``. The user id is the path between ``/api/users/`` and the last
segment, percent-encoded as a URL needs it; it may hold ``/``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.observe.userdata.erase import erase_user
from modelyard.observe.userdata.export import export_user, record_export, summarise_user
from modelyard.observe.userdata.protocol import UserErasure, UserExport, UserSummary
from modelyard.observe.userdata.pseudonym import MAX_USER
from modelyard.services import Services, services_of

router = APIRouter(prefix="/api/users", tags=["observe"], responses=error_responses(401, 403, 404))
ADMIN = requires(Access.admin)
# Longest wait for the request log's queue before reading or erasing: rows a busy log
# keeps queued after that are written with the user id (see docs/observe.md).
LOG_WAIT_S = 5.0
User = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_USER,
        description="The `user` a client sends, exactly (percent-encoded).",
    ),
]


async def _logged(services: Services) -> None:
    """Let the request log write what it holds, so the user's latest requests count."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LOG_WAIT_S):
            await services.request_log.flush()


@router.get("/{user:path}/summary", response_model=UserSummary, dependencies=[ADMIN])
async def user_summary(user: User, request: Request) -> UserSummary:
    """How many requests, stored contents, feedback and dataset items name the user."""
    services = services_of(request)
    await _logged(services)
    secret = services.guard.signer.secret
    return await asyncio.to_thread(summarise_user, services.store, user, secret)


@router.get("/{user:path}/export", response_model=UserExport, dependencies=[ADMIN])
async def user_export(user: User, request: Request) -> UserExport:
    """Everything stored about the user: each request with its content decrypted and its
    feedback, the dataset items made from them, review corrections and teacher answers.
    Audited (``user.export``, naming the user's pseudonym)."""
    services = services_of(request)
    await _logged(services)
    opener = services.guard.cipher.open
    export = await asyncio.to_thread(export_user, services.store, opener, user)
    actor = actor_of(principal_of(request))
    secret = services.guard.signer.secret
    await asyncio.to_thread(record_export, services.store, export, actor, secret)
    return export


@router.post(
    "/{user:path}/erase",
    response_model=UserErasure,
    dependencies=[ADMIN],
    responses=error_responses(400),
)
async def user_erase(user: User, request: Request) -> UserErasure:
    """Erase what is stored about the user in one transaction, keeping usage and cost
    figures; the audit record names the user's pseudonym, not the id."""
    services = services_of(request)
    await _logged(services)
    actor = actor_of(principal_of(request))
    secret = services.guard.signer.secret
    return await asyncio.to_thread(erase_user, services.store, user, actor, secret)


def attach(app: FastAPI) -> None:
    app.include_router(router)
