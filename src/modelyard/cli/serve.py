"""``modelyard serve``: run the API and console."""

from __future__ import annotations

import logging
import os

import click
import uvicorn

from modelyard.config import Settings


@click.command()
@click.option("--host", default=None, help="Address to bind (default: MODELYARD_HOST).")
@click.option("--port", type=int, default=None, help="Port (default: MODELYARD_PORT).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the port. More than one needs Redis for rate limits and "
    "budgets (MODELYARD_RATE_LIMIT_BACKEND=redis); see docs/settings.md.",
)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the OpenAI-compatible API, the registry API and the console."""
    from modelyard.app import build_app, open_services

    settings = Settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if workers > 1 and settings.rate_limit_backend != "redis":
        raise click.ClickException(
            f"--workers {workers} needs rate limits and budgets shared between the workers: "
            "set MODELYARD_RATE_LIMIT_BACKEND=redis (and MODELYARD_REDIS_URL), or serve with "
            "one worker"
        )
    click.echo(
        f"modelyard on http://{bind_host}:{bind_port}/ (console) · "
        f"http://{bind_host}:{bind_port}/v1 (OpenAI API) · data in {settings.home}"
        + (f" · {workers} workers" if workers > 1 else "")
    )
    if workers == 1:
        uvicorn.run(
            build_app(settings),
            host=bind_host,
            port=bind_port,
            log_level=settings.log_level,
            access_log=settings.access_log,
            timeout_graceful_shutdown=5,
        )
        return
    # Migrate, register the defaults and write the admin key once, here, so that the
    # workers starting together find them made instead of racing to make them.
    open_services(settings).store.close()
    os.environ["MODELYARD_HOME"] = str(settings.home)
    uvicorn.run(
        "modelyard.app:app_from_env",
        factory=True,
        workers=workers,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,
    )
