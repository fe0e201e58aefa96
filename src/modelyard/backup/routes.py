"""Backup JSON API: what a backup holds (readers), and a sealed backup to download (admin).
Restoring is the CLI's (`modelyard restore`): it needs an empty home no server runs on."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from modelyard.backup.archive import backup_name, record_backup, write_backup_file
from modelyard.backup.protocol import BackupCreate, BackupStatus, Manifest
from modelyard.backup.sealing import Passphrase
from modelyard.backup.status import backup_status
from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.services import Services, services_of

ADMIN = requires(Access.admin)
READ = requires(Access.read)
ARCHIVE = {
    "description": "The sealed backup (`modelyard restore FILE` opens it).",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}

router = APIRouter(prefix="/api", tags=["backup"], responses=error_responses(401, 403))


@router.get("/backup", response_model=BackupStatus, dependencies=[READ])
async def get_backup(request: Request) -> BackupStatus:
    services = services_of(request)
    return await asyncio.to_thread(backup_status, services.store.engine, services.settings)


@router.post(
    "/backup",
    dependencies=[ADMIN],
    response_class=FileResponse,
    responses={200: ARCHIVE, **error_responses(400)},
)
async def create_backup(body: BackupCreate, request: Request) -> FileResponse:
    """A consistent snapshot of the store and the home's key files, sealed with the
    passphrase; made in a worker thread, spooled to a temporary file, then sent."""
    services = services_of(request)
    secret = Passphrase(body.passphrase.get_secret_value())
    directory, manifest = await asyncio.to_thread(_backup, services, secret)
    actor = actor_of(principal_of(request))
    await asyncio.to_thread(record_backup, services.store, manifest, actor)
    return FileResponse(
        directory / "backup",
        media_type="application/octet-stream",
        filename=backup_name(manifest),
        background=BackgroundTask(shutil.rmtree, directory, ignore_errors=True),
    )


def _backup(services: Services, secret: Passphrase) -> tuple[Path, Manifest]:
    directory = Path(tempfile.mkdtemp(prefix="modelyard-backup-"))
    try:
        engine, settings = services.store.engine, services.settings
        return directory, write_backup_file(engine, settings, directory / "backup", secret)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def attach(app: FastAPI) -> None:
    app.include_router(router)
