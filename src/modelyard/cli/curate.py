"""``modelyard curate NAME``: a dataset version from the request log, feedback and datasets,
cleaned, scrubbed, deduplicated, checked for outliers and split, with the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from modelyard.cli.common import json_option, open_home_store, print_json, print_table
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.improve.cleaning import REASONS
from modelyard.improve.curate import Curation, Curator
from modelyard.improve.protocol import CurateOut, CurateRequest
from modelyard.services import local_actor


def _splits(value: str) -> dict[str, float]:
    parts = value.split("/")
    try:
        train, dev, test = (float(part) for part in parts)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not TRAIN/DEV/TEST, e.g. 80/10/10") from None
    return {"train": train, "dev": dev, "test": test}


@click.command()
@click.argument("name")
@click.option("--route", help="Only logged requests to this route.")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=7.0, show_default=True)
@click.option("--feedback", help="Only requests with feedback of this name (e.g. thumbs).")
@click.option("--negative", is_flag=True, help="Only negative feedback (false, or a score of 0).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=100_000, show_default=True)
@click.option("--no-log", is_flag=True, help="Read no logged requests (only --dataset).")
@click.option("--dataset", "datasets", multiple=True, help="NAME[@VERSION] whose items join in.")
@click.option("--label", help="An item's class: `output`, or `feedback:NAME`.")
@click.option("--no-scrub-pii", is_flag=True, help="Keep PII (recorded in the provenance).")
@click.option("--language", "languages", multiple=True, help="Restrict language ID to these.")
@click.option("--keep", multiple=True, type=click.Choice(REASONS), help="Keep rows of this kind.")
@click.option("--no-exact", is_flag=True, help="Keep exact duplicates.")
@click.option("--no-near", is_flag=True, help="Keep near duplicates.")
@click.option("--near-threshold", type=click.FloatRange(0.3, 1.0), default=0.6, show_default=True)
@click.option(
    "--outliers", type=click.Choice(["flag", "drop", "off"]), default="flag", show_default=True
)
@click.option(
    "--contamination", type=click.FloatRange(0, 0.5, min_open=True), help="Outlier share."
)
@click.option("--split", "split", default="80/10/10", show_default=True, help="TRAIN/DEV/TEST.")
@click.option(
    "--stratify",
    type=click.Choice(["label_language", "label", "language", "none"]),
    default="label_language",
    show_default=True,
)
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--examples", type=click.IntRange(0, 50), default=5, show_default=True)
@click.option("--dry-run", is_flag=True, help="Report what would be built; build nothing.")
@click.option(
    "--dropped",
    "dropped_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every dropped row (request ids, step, reason) here as JSONL.",
)
@json_option
def curate(name: str, **options: Any) -> None:
    """Build NAME's next version from logged requests (opened with this machine's content
    keys), their feedback and datasets, and print what each step did and why."""
    body = _request(name, options)
    cipher = crypto.cipher_for(Settings())
    with open_home_store() as store:
        curator = Curator(store, body, open_content=cipher.open, actor=local_actor())
        result = curator.run(dry_run=options["dry_run"])
    if options["dropped_file"] is not None:
        _write_dropped(options["dropped_file"], result)
    if options["as_json"]:
        print_json(result.out)
        return
    _show(result.out)


def _request(name: str, options: dict[str, Any]) -> CurateRequest:
    log = {
        "route": options["route"],
        "days": options["days"],
        "feedback": options["feedback"],
        "negative_only": options["negative"],
        "limit": options["limit"],
    }
    outliers: dict[str, Any] = {"action": options["outliers"], "seed": options["seed"]}
    if options["contamination"] is not None:
        outliers["contamination"] = options["contamination"]
    return CurateRequest.model_validate(
        {
            "name": name,
            "log": None if options["no_log"] else log,
            "datasets": list(options["datasets"]),
            "label": options["label"],
            "scrub_pii": not options["no_scrub_pii"],
            "languages": list(options["languages"]) or None,
            "cleaning": {reason: reason not in options["keep"] for reason in REASONS},
            "dedup": {
                "exact": not options["no_exact"],
                "near": not options["no_near"],
                "threshold": options["near_threshold"],
            },
            "outliers": outliers,
            "splits": {
                **_splits(options["split"]),
                "by": options["stratify"],
                "seed": options["seed"],
            },
            "examples": options["examples"],
        }
    )


def _write_dropped(path: Path, result: Curation) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for dropped in result.dropped:
            handle.write(json.dumps(dropped.__dict__, ensure_ascii=False) + "\n")


def _show(out: CurateOut) -> None:
    report = out.report
    print_table(
        f"Curation of {out.request.name}: {report.read} rows read, {report.kept} kept",
        ["step", "seen", "dropped", "flagged", "counts", "what"],
        [[s.step, s.seen, s.dropped, s.flagged, _counts(s.counts), s.what] for s in report.steps],
    )
    print_table(
        "Splits",
        ["split", "items", "languages", "labels"],
        [
            [
                name,
                table.get("items", 0),
                _counts({k[9:]: v for k, v in table.items() if k.startswith("language:")}),
                _counts({k[6:]: v for k, v in table.items() if k.startswith("label:")}),
            ]
            for name, table in report.splits.items()
        ],
    )
    if out.dataset is None:
        click.echo("dry run: nothing was built")
    else:
        d = out.dataset
        click.echo(f"{d.name}@{d.version}: {d.item_count} items, sha256 {d.sha256[:12]}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items()) or "—"
