"""``modelyard quality show|judgements``: the online quality of routes, from the live
judge's scores of sampled answers (a route's ``live_judge`` policy: ``modelyard route
judge``)."""

from __future__ import annotations

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table, when
from modelyard.observe.quality.judgements import LiveJudgements


@click.group()
def quality() -> None:
    """Online quality: live judges' scores of a sample of each route's answers."""


@quality.command("show")
@click.option("--route", default=None, help="One route (default: all).")
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True, max=720),
    default=24.0,
    help="The window, back from now.",
)
@click.option(
    "--bucket",
    "bucket_s",
    type=click.IntRange(60, 86_400),
    default=3600,
    help="A point's span, seconds.",
)
@json_option
def show_command(route: str | None, hours: float, bucket_s: int, as_json: bool) -> None:
    """Mean judged quality (0-1) per route and version, and per time bucket."""
    with open_home_store() as store:
        out = LiveJudgements(store).quality(hours=hours, bucket_s=bucket_s, route=route)
    if as_json:
        print_json(out)
        return
    print_table(
        f"online quality, last {hours:g} h",
        ["route", "version", "judged", "unscored", "mean", "last buckets"],
        [
            (
                s.route,
                s.version,
                s.judged,
                s.unscored,
                "" if s.mean is None else f"{s.mean:.3f}",
                " ".join(f"{p.mean:.2f}" for p in s.points[-6:]),
            )
            for s in out.series
        ],
    )


@quality.command("judgements")
@click.option("--route", default=None, help="One route (default: all).")
@click.option("--version", default=None, help="One version, 'model@n'.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, help="Newest first.")
@json_option
def judgements_command(route: str | None, version: str | None, limit: int, as_json: bool) -> None:
    """The newest judged samples: request, version, score and the judge."""
    with open_home_store() as store:
        found = LiveJudgements(store).recent(route, version, limit)
    if as_json:
        print_json(found)
        return
    print_table(
        "live judgements",
        ["at", "request", "version", "variant", "score", "quality", "judge", "error"],
        [
            (
                when(j.at),
                j.request_id,
                j.version,
                j.variant,
                "" if j.score is None else f"{j.score:g}/{j.scale[1]}",
                "" if j.quality is None else f"{j.quality:.2f}",
                j.judge,
                j.error,
            )
            for j in found
        ],
    )
