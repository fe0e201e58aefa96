"""The ledger of a curation: per step, what it saw, dropped and flagged, a few examples, and
every dropped row with its reason (so nothing leaves a dataset unaccounted for)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.improve.protocol import Example, StepReport

EXAMPLE_CHARS = 200


@dataclass(frozen=True)
class Dropped:
    """One row (or kept item, with the rows merged into it) a step removed."""

    request_ids: list[str]
    step: str
    reason: str
    note: str = ""


def cut(text: str, size: int = EXAMPLE_CHARS) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


@dataclass
class Ledger:
    """Counts, examples and drops, step by step. ``shown`` is applied to every example's
    text (the PII scrubber, unless scrubbing was turned off)."""

    examples: int
    shown: Callable[[str], str]
    dropped: list[Dropped] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    flagged: Counter[str] = field(default_factory=Counter)
    counts: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    shown_examples: defaultdict[str, list[Example]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def example(
        self, step: str, request_ids: list[str], text: str, note: str = ""
    ) -> Example | None:
        """Keep an example of ``step`` while it has fewer than asked; the example, if kept."""
        if len(self.shown_examples[step]) >= self.examples:
            return None
        example = Example(request_ids=list(request_ids), text=cut(self.shown(text)), note=note)
        self.shown_examples[step].append(example)
        return example

    def drop(
        self,
        step: str,
        reason: str,
        request_ids: list[str],
        text: str,
        note: str = "",
        show: bool = True,
    ) -> Example | None:
        """Record a drop; its example, when it is shown and the step wants more."""
        self.counts[step][reason] += 1
        self.dropped.append(Dropped(list(request_ids), step, reason, note))
        if not show:
            return None
        return self.example(step, request_ids, text, f"{reason}: {note}" if note else reason)

    def dropped_by(self) -> dict[str, int]:
        return dict(Counter(d.reason for d in self.dropped))

    def step(self, step: str, what: str) -> StepReport:
        dropped = sum(1 for d in self.dropped if d.step == step)
        return StepReport(
            step=step,
            what=what,
            seen=self.seen[step],
            dropped=dropped,
            flagged=self.flagged[step],
            counts=dict(self.counts[step]),
            examples=list(self.shown_examples[step]),
        )
