"""``modelyard serve``: run the API and console."""

from __future__ import annotations

import logging

import click
import uvicorn

from modelyard.config import Settings


@click.command()
@click.option("--host", default=None, help="Address to bind (default: MODELYARD_HOST).")
@click.option("--port", type=int, default=None, help="Port (default: MODELYARD_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the OpenAI-compatible API, the registry API and the console."""
    from modelyard.app import build_app

    settings = Settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    click.echo(
        f"modelyard on http://{bind_host}:{bind_port}/ (console) · "
        f"http://{bind_host}:{bind_port}/v1 (OpenAI API) · data in {settings.home}"
    )
    uvicorn.run(
        build_app(settings),
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
