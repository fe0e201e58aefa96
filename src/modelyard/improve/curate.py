"""Curation: a dataset version built from the request log, its feedback and registered
datasets, step by step, with a report of what each step did and why.

One pass reads the sources in batches and takes each row through cleaning, PII scrubbing,
language identification and exact and near-duplicate removal; what survives goes to a
spool file (its compact facts stay in memory: request ids, fingerprint, label, language,
six numbers). Then the isolation forest scores the survivors and the stratified splits
are drawn, and a second pass over the spool streams the items into the new version. Memory
holds one batch of rows, the spool's facts and the near-duplicate index, never the log."""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from modelyard.errors import ModelyardError
from modelyard.evaluate.contamination import fingerprint
from modelyard.evaluate.datasets import DatasetService, EmptyDataset, StoredItem
from modelyard.guard.pii import PiiDetector
from modelyard.improve import steps
from modelyard.improve.cleaning import unclean
from modelyard.improve.dedup import NearDuplicates
from modelyard.improve.language import LanguageId, library
from modelyard.improve.ledger import Dropped, Ledger, cut
from modelyard.improve.outliers import FeatureColumns, Scores, isolation_scores
from modelyard.improve.protocol import (
    CurateOut,
    CurateRequest,
    CurationReport,
    Example,
    PiiProvenance,
    Split,
)
from modelyard.improve.scrub import scrub_item, scrub_text
from modelyard.improve.sources import Candidate, dataset_items, logged
from modelyard.improve.splits import assign, stratum
from modelyard.store import Store

Item = dict[str, Any]


class NothingToCurate(ModelyardError, ValueError):
    status = 400
    code = "invalid_curation"
    param = "log"


@dataclass
class Kept:
    """What stays in memory of an item that passed the first pass (its data is spooled)."""

    request_ids: list[str]
    fingerprint: str
    label: str | None
    language: str


@dataclass(frozen=True)
class Curation:
    out: CurateOut
    dropped: list[Dropped]  # every row dropped, with its step and reason


class Curator:
    """One curation; ``run`` once."""

    def __init__(
        self,
        store: Store,
        request: CurateRequest,
        *,
        open_content: Callable[[bytes], bytes],
        actor: str,
        now: datetime | None = None,
    ) -> None:
        if request.log is None and not request.datasets:
            raise NothingToCurate("nothing to curate from: give `log`, `datasets` or both")
        self._store = store
        self._request = request
        self._open = open_content
        self._actor = actor
        self._now = now or datetime.now(UTC)
        self._datasets = DatasetService(store)
        self._detector = PiiDetector() if request.scrub_pii else None
        self._language = LanguageId(request.languages)
        dedup = request.dedup
        self._near = NearDuplicates(dedup.threshold, dedup.num_perm) if dedup.near else None
        self._exact: dict[str, int] = {}
        self._kept: list[Kept] = []
        self._features = FeatureColumns()
        self._ledger = Ledger(request.examples, self._shown)
        self._entities: Counter[str] = Counter()
        self._read = 0
        self._inputs: dict[str, Any] = {"log": None, "datasets": []}
        # Examples that name a kept item: its text is added when the spool is read.
        self._naming: defaultdict[int, list[Example]] = defaultdict(list)

    def _shown(self, text: str) -> str:
        return text if self._detector is None else scrub_text(text, self._detector)

    def run(self, dry_run: bool = False) -> Curation:
        with tempfile.TemporaryFile() as spool:
            self._first_pass(spool)
            scores = self._outliers()
            splits = self._splits(scores)
            self._fill_examples(spool, scores)
            report = self._report(scores, splits)
            if dry_run:
                dataset = None
            else:
                if not any(split is not None for split in splits):
                    raise EmptyDataset(
                        f"nothing is left of the {self._read} rows read "
                        f"(dropped: {report.dropped_by}); loosen the cleaning or the sources"
                    )
                dataset = self._datasets.register_stream(
                    self._request.name,
                    self._items(spool, scores, splits),
                    self._provenance(report),
                    self._actor,
                )
        out = CurateOut(dataset=dataset, request=self._request, report=report)
        return Curation(out, list(self._ledger.dropped))

    # -- the first pass: read, clean, scrub, tag, dedup, spool ------------------------

    def _sources(self) -> Iterator[list[Candidate]]:
        selection = self._request.log
        if selection is not None:
            since = self._now - timedelta(days=selection.days)
            self._inputs["log"] = {
                **selection.model_dump(mode="json"),
                "since": since.isoformat(),
                "until": self._now.isoformat(),
            }
            yield from logged(self._store, selection, since, self._now, self._open)
        for reference in self._request.datasets:
            name, _, number = reference.partition("@")
            found = self._datasets.get(name, int(number) if number else None)
            self._inputs["datasets"].append(
                {"name": found.name, "version": found.version, "sha256": found.sha256}
            )
            yield from dataset_items(self._datasets, found.name, found.version)

    def _first_pass(self, spool: IO[bytes]) -> None:
        for batch in self._sources():
            for candidate in batch:
                self._read += 1
                item = self._cleaned(candidate)
                if item is not None:
                    self._take(candidate, item, spool)

    def _cleaned(self, candidate: Candidate) -> Item | None:
        """The candidate's item, or None when it is dropped at reading or cleaning."""
        ids = candidate.request_ids
        self._ledger.seen["read"] += 1
        if candidate.item is None or candidate.facts is None:
            self._ledger.drop("read", candidate.problem or "unreadable", ids, "(no content)")
            return None
        self._ledger.seen["clean"] += 1
        reason = unclean(candidate.facts, self._request.cleaning)
        if reason is not None:
            self._ledger.drop("clean", reason, ids, candidate.facts.question)
            return None
        return candidate.item

    def _take(self, candidate: Candidate, item: Item, spool: IO[bytes]) -> None:
        """Scrub and tag ``item``; drop it as a duplicate or keep it."""
        ids = candidate.request_ids
        self._ledger.seen["pii"] += 1
        if self._detector is not None:
            found = scrub_item(item, self._detector)
            item["pii"] = found
            self._entities.update(found)
            if found:
                self._ledger.flagged["pii"] += 1
                self._ledger.example("pii", ids, item["input"], ", ".join(sorted(found)))
        text = str(item.get("input") or "")
        item["language"] = language = self._language.identify(text)
        self._ledger.seen["language"] += 1
        self._ledger.counts["language"][language] += 1
        print_ = fingerprint(text)
        signature = self._near.signature(text) if self._near is not None else None
        if self._duplicate(print_, signature, text, ids):
            return
        label = steps.label_of(item, self._request.label)
        if label is not None:
            item["label"] = label
        facts = candidate.facts  # the texts as sent: the token counts are theirs
        self._features.add(
            facts.question if facts else text,
            facts.answer if facts else item.get("output"),
            candidate.latency_ms,
            candidate.tokens,
            language,
        )
        position = len(self._kept)
        self._kept.append(Kept(list(ids), print_, label, language))
        self._exact.setdefault(print_, position)
        if self._near is not None:
            self._near.add(position, signature)
        spool.write(json.dumps(item, ensure_ascii=False, default=str).encode("utf-8") + b"\n")

    def _duplicate(self, print_: str, signature: Any, text: str, ids: list[str]) -> bool:
        """Whether the item duplicates a kept one (its ids then join the kept item's)."""
        self._ledger.seen["exact_duplicates"] += 1
        kept = self._exact.get(print_) if self._request.dedup.exact else None
        step, note = "exact_duplicates", ""
        if kept is None and self._near is not None:
            self._ledger.seen["near_duplicates"] += 1
            match = self._near.match(signature)
            if match is not None:
                kept, step = match.key, "near_duplicates"
                note = f"Jaccard {match.similarity:.2f} with "
        if kept is None:
            return False
        target = self._kept[kept]
        note += f"kept {target.request_ids[0] if target.request_ids else f'item {kept}'}"
        example = self._ledger.drop(step, step.removesuffix("s"), ids, text, note)
        if example is not None:
            self._naming[kept].append(example)
        target.request_ids.extend(ids)
        return True

    # -- after the first pass: outliers, splits, examples, the report --------------------

    def _outliers(self) -> Scores | None:
        if self._request.outliers.action == "off":
            return None
        self._ledger.seen["outliers"] = len(self._kept)
        return isolation_scores(self._features, self._request.outliers)

    def _splits(self, scores: Scores | None) -> list[Split | None]:
        """Each kept item's split; None for an outlier that is dropped."""
        dropping = scores is not None and self._request.outliers.action == "drop"
        alive = [
            i
            for i in range(len(self._kept))
            if not (dropping and scores is not None and scores.flagged[i])
        ]
        options = self._request.splits
        strata = [stratum(options, self._kept[i].label, self._kept[i].language) for i in alive]
        out: list[Split | None] = [None] * len(self._kept)
        for i, name in zip(alive, assign(strata, options), strict=True):
            out[i] = name
        return out

    def _fill_examples(self, spool: IO[bytes], scores: Scores | None) -> None:
        """Read the spool for the texts examples need: kept items that duplicates name, and
        the most unusual outliers (whose drops or flags are recorded here)."""
        flagged = [] if scores is None else [i for i, f in enumerate(scores.flagged) if f]
        by_score = sorted(flagged, key=lambda i: scores.scores[i] if scores else 0.0)
        worst = set(by_score[: self._request.examples])
        needed = set(self._naming) | worst
        if not needed and not flagged:
            return
        spool.seek(0)
        marked = set(flagged)
        for position, line in enumerate(spool):
            if position not in needed and position not in marked:
                continue
            text = str(json.loads(line).get("input") or "") if position in needed else ""
            for example in self._naming.get(position, []):
                example.note += f": {cut(text, 80)!r}"
            if scores is not None and position in marked:
                self._outlier(position, text, scores.scores[position], position in worst)

    def _outlier(self, position: int, text: str, score: float, show: bool) -> None:
        ids = self._kept[position].request_ids
        note = f"score {score:.3f}"
        if self._request.outliers.action == "drop":
            self._ledger.drop("outliers", "outlier", ids, text, note, show=show)
            return
        self._ledger.flagged["outliers"] += 1
        if show:
            self._ledger.example("outliers", ids, text, note)

    def _report(self, scores: Scores | None, splits: list[Split | None]) -> CurationReport:
        ledger, request = self._ledger, self._request
        alive = [(kept, split) for kept, split in zip(self._kept, splits, strict=True) if split]
        by_split: dict[str, Counter[str]] = {}
        for kept, split in alive:
            table = by_split.setdefault(split, Counter())
            table["items"] += 1
            table[f"language:{kept.language}"] += 1
            if kept.label is not None:
                table[f"label:{kept.label}"] += 1
        split_step = ledger.step("split", steps.split(request))
        split_step.seen = len(alive)
        split_step.counts = {name: table["items"] for name, table in by_split.items()}
        return CurationReport(
            read=self._read,
            kept=len(alive),
            dropped=len(ledger.dropped),
            dropped_by=ledger.dropped_by(),
            steps=[
                ledger.step("read", steps.read(request, self._inputs)),
                ledger.step("clean", steps.clean(request)),
                ledger.step("pii", steps.pii(request, self._actor)),
                ledger.step("language", steps.language(library())),
                ledger.step("exact_duplicates", steps.exact(request)),
                ledger.step("near_duplicates", steps.near(request)),
                ledger.step("outliers", steps.outliers(request)),
                split_step,
            ],
            languages=dict(Counter(kept.language for kept, _ in alive).most_common()),
            labels=dict(Counter(k.label for k, _ in alive if k.label is not None).most_common()),
            splits={name: dict(table) for name, table in sorted(by_split.items())},
            pii=PiiProvenance(
                scrubbed=request.scrub_pii,
                opted_out_by=None if request.scrub_pii else self._actor,
                entities=dict(self._entities),
            ),
            language_id=library(),
        )

    def _items(
        self, spool: IO[bytes], scores: Scores | None, splits: list[Split | None]
    ) -> Iterator[StoredItem]:
        """The second pass: the kept items with their request ids, split and outlier score."""
        spool.seek(0)
        for position, line in enumerate(spool):
            split = splits[position]
            if split is None:
                continue
            kept = self._kept[position]
            item = json.loads(line)
            item["request_ids"] = kept.request_ids
            item["split"] = split
            if scores is not None:
                item["outlier"] = scores.flagged[position]
                item["outlier_score"] = round(scores.scores[position], 4)
            first = kept.request_ids[0] if kept.request_ids else None
            yield StoredItem(item, first, split, kept.fingerprint)

    def _provenance(self, report: CurationReport) -> dict[str, Any]:
        return {
            "kind": "curated",
            "inputs": self._inputs,
            "request": self._request.model_dump(mode="json"),
            "report": report.model_dump(mode="json"),
        }
