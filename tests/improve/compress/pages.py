"""A compression for the console's page tests: one that fails at once (the GGUF is only a
header), so that its page has a state to show without minutes of measuring."""

from __future__ import annotations

from pathlib import Path

from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient


async def compress_pages(api: AppClient, directory: Path) -> dict[str, str]:
    """The URLs of the compression pages, keyed by their routes' paths."""
    broken = directory / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    api.services.registry.add_version(
        "broken", VersionCreate(engine_kind="llamacpp", artifact_uri=str(broken)), actor="tests"
    )
    started = await api.post(
        "/api/compress", json={"model": "broken", "version": 1, "to": ["Q8_0"]}
    )
    assert started.status_code == 202, started.text
    await api.app.state.improve_jobs.wait(f"compress:{started.json()['id']}")
    out = (await api.get(f"/api/compress/{started.json()['id']}")).json()
    assert out["status"] == "failed" and "could not read" in out["message"], out
    return {
        "/ui/compress": "/ui/compress",
        "/ui/compress/{compression_id}": f"/ui/compress/{out['id']}",
    }
