"""``modelyard serve``: run the API and console."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType

import click
import uvicorn

from modelyard import __version__
from modelyard.config import Settings
from modelyard.guard.keys import ADMIN_KEY_FILE
from modelyard.observe.tracing import TracingConfig, shown, tracing_config
from modelyard.serving.drain import Drain

log = logging.getLogger(__name__)
DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Addresses that bind every interface: a browser reaches them on the loopback one.
ANY_ADDRESS = ("0.0.0.0", "::", "")


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
    from modelyard.app import build_app, first_start

    settings = Settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    if workers > 1 and settings.rate_limit_backend != "redis":
        raise click.ClickException(
            f"--workers {workers} needs rate limits and budgets shared between the workers: "
            "set MODELYARD_RATE_LIMIT_BACKEND=redis (and MODELYARD_REDIS_URL), or serve with "
            "one worker"
        )
    tracing = tracing_config(settings)  # a setting that cannot work stops here, with why
    # Migrate, register the defaults and write the admin key here, once, before logging is
    # set up: the banner then says where the key is, and workers starting together find it
    # made instead of racing to make them.
    written = first_start(settings)
    click.echo(banner(settings, bind_host, bind_port, workers, written, tracing))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if workers == 1:
        app = build_app(settings)
        config = uvicorn.Config(
            app,
            host=bind_host,
            port=bind_port,
            log_level=settings.log_level,
            access_log=settings.access_log,
            timeout_graceful_shutdown=max(1, round(settings.drain_timeout_s)),
        )
        DrainingServer(config, app.state.drain, settings.drain_delay_s).run()
        return
    os.environ["MODELYARD_HOME"] = str(settings.home)
    uvicorn.run(
        "modelyard.app:app_from_env",
        factory=True,
        workers=workers,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=max(1, round(settings.drain_timeout_s)),
    )


class DrainingServer(uvicorn.Server):
    """uvicorn's server, drained on SIGTERM or the first Ctrl-C: ``/readyz`` answers 503 for
    ``delay_s`` while requests are still served, then uvicorn's graceful shutdown (no new
    connections; requests and streams in flight get ``timeout_graceful_shutdown``; then the
    app's shutdown flushes the request log). Another signal meanwhile stops at once, as
    uvicorn does. (With ``--workers``, uvicorn's own workers stop without the delay.)"""

    def __init__(self, config: uvicorn.Config, drain: Drain, delay_s: float) -> None:
        super().__init__(config)
        self._drain = drain
        self._delay_s = delay_s
        self._stop_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._stop_at is None and not self.should_exit and sig in DRAIN_SIGNALS:
            self._captured_signals.append(sig)  # re-raised at the end, as uvicorn does
            self._drain.begin()
            self._stop_at = time.monotonic() + self._delay_s
            log.info("draining: /readyz answers 503; stopping in %.1f s", self._delay_s)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            self.should_exit = True
        return await super().on_tick(counter)


def banner(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    written: Path | None,
    tracing: TracingConfig | None = None,
) -> str:
    """The first lines a server prints: where the console, the docs and the admin key are,
    and where traces go."""
    base = f"http://{'127.0.0.1' if host in ANY_ADDRESS else host}:{port}"
    lines = [
        f"modelyard {__version__} serving on {host}:{port}"
        + (f" with {workers} workers" if workers > 1 else ""),
        f"  console:    {base}/",
        f"  API docs:   {base}/docs",
        f"  OpenAI API: {base}/v1",
        f"  admin key:  {admin_key_line(settings.home, written)}",
        f"  data:       {settings.home}",
        f"  traces:     {traces_line(tracing)}",
    ]
    return "\n".join(lines)


def traces_line(tracing: TracingConfig | None) -> str:
    if tracing is None:
        return "off (MODELYARD_TRACING=otlp exports them)"
    return (
        f"OTLP/HTTP to {shown(tracing.endpoint)} (from {tracing.endpoint_from}), "
        f"{tracing.sample_ratio * 100:g} % of requests sampled"
    )


def admin_key_line(home: Path, written: Path | None) -> str:
    if written is not None:
        return f"{written} (created now, mode 0600: keep it secret)"
    path = home / ADMIN_KEY_FILE
    if path.exists():
        return f"{path} (created at an earlier start)"
    return (
        f"not in {path}: the store's admin key was written elsewhere "
        "(`modelyard keys create NAME --role admin` makes another)"
    )
