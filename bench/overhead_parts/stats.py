"""The pure part of the benchmark: per-step statistics, the figures the issue's targets are
stated in, the verdicts, and the tables. No I/O beyond printing to a given console."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MAX_ERROR_RATE = 0.01  # "sustained": fewer than 1 % errors
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
MODES = (False, True)  # non-streaming, streaming


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, interpolated linearly between ranks
    (numpy's default); NaN for no values."""
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class StepStats:
    """One step (target, mode, concurrency, repetition): the requests that ended inside
    the measured window (after the warm-up)."""

    window_s: float
    requests: int  # ended in the window, good or not
    ok: int
    errors: int
    unfinished: int  # still in flight when the step was cut off (reported, not counted)
    rps: float  # good answers per second of the window
    error_rate: float  # errors / requests (1.0 when nothing ended but requests hung)
    latency_ms: dict[str, float]  # of good answers: min, mean, p50, p90, p99, p99.9, max
    error_kinds: dict[str, int] = field(default_factory=dict)


def summarise(
    records: Iterable[Sequence[Any]], *, warmup_s: float, duration_s: float, unfinished: int = 0
) -> StepStats:
    """Statistics of the load generator's records ``[start_s, end_s, status, error, seq]``
    that ended in ``[warmup_s, warmup_s + duration_s]``."""
    end_of_window = warmup_s + duration_s
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    for start, end, _status, error, *_ in records:
        if not warmup_s <= end <= end_of_window:
            continue
        if error is None:
            latencies.append((end - start) * 1000.0)
        else:
            kinds[str(error)] += 1
    latencies.sort()
    errors = sum(kinds.values())
    requests = len(latencies) + errors
    # Nothing ended but requests hung: count the step as failed, not as error-free.
    error_rate = errors / requests if requests else (1.0 if unfinished else 0.0)
    latency = {
        "min": latencies[0] if latencies else math.nan,
        "mean": sum(latencies) / len(latencies) if latencies else math.nan,
        **{name: percentile(latencies, q) for name, q in PERCENTILES.items()},
        "max": latencies[-1] if latencies else math.nan,
    }
    return StepStats(
        window_s=duration_s,
        requests=requests,
        ok=len(latencies),
        errors=errors,
        unfinished=unfinished,
        rps=len(latencies) / duration_s if duration_s > 0 else math.nan,
        error_rate=error_rate,
        latency_ms={k: round(v, 3) for k, v in latency.items()},
        error_kinds=dict(kinds),
    )


def step_row(
    target: str, rep: int, stream: bool, concurrency: int, stats: StepStats, **extra: Any
) -> dict[str, Any]:
    """A step as the report keeps it (JSON-ready)."""
    return {
        "target": target,
        "rep": rep,
        "stream": stream,
        "concurrency": concurrency,
        **asdict(stats),
        **extra,
    }


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return sum(present) / len(present) if present else None


def _steps(steps: Sequence[dict[str, Any]], target: str, stream: bool) -> list[dict[str, Any]]:
    return [s for s in steps if s["target"] == target and s["stream"] == stream]


def reps_of(steps: Sequence[dict[str, Any]]) -> list[int]:
    return sorted({s["rep"] for s in steps})


def sustained_step(steps: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The step with the highest throughput among those with an error rate under 1 %."""
    good = [s for s in steps if s["error_rate"] < MAX_ERROR_RATE and s["ok"] > 0]
    return max(good, key=lambda s: s["rps"]) if good else None


def max_sustained(steps: Iterable[dict[str, Any]]) -> float | None:
    """The highest throughput among steps with an error rate under 1 %."""
    best = sustained_step(steps)
    return None if best is None else float(best["rps"])


def max_sustained_by_rep(
    steps: Sequence[dict[str, Any]], target: str, stream: bool
) -> dict[int, float | None]:
    mine = _steps(steps, target, stream)
    return {rep: max_sustained(s for s in mine if s["rep"] == rep) for rep in reps_of(mine)}


def harness_bound_at_max(steps: Sequence[dict[str, Any]], target: str, stream: bool) -> bool:
    """Whether the step giving the target's best sustained rps had the load generator's
    core full (so the target may be faster than measured)."""
    best = sustained_step(_steps(steps, target, stream))
    return bool(best and best.get("harness_bound"))


# A target named ``<server>+<body>`` is the server sent requests of another body kind
# (bench.overhead_parts.loadgen.BODY_KINDS): ``+tools`` carries tools and extra fields,
# ``+padded`` is a plain request as large as a tools one (the control for its size).
BODY_SUFFIXES = ("+tools", "+padded")


def split_target(name: str) -> tuple[str, str]:
    """``modelyard+tools`` -> (``modelyard``, ``tools``); a plain target's body is ``plain``."""
    for suffix in BODY_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix), suffix[1:]
    return name, "plain"


def added_latency_by_rep(
    steps: Sequence[dict[str, Any]], target: str, stream: bool, concurrency: int = 1
) -> dict[int, dict[str, float]]:
    """Per repetition: the target's p50/p99 minus direct's at the same concurrency, mode
    and repetition (ms)."""
    out: dict[int, dict[str, float]] = {}
    for rep in reps_of(steps):

        def at(name: str, rep: int = rep) -> dict[str, Any] | None:
            found = [
                s
                for s in _steps(steps, name, stream)
                if s["rep"] == rep and s["concurrency"] == concurrency and s["ok"] > 0
            ]
            return found[0] if found else None

        # A ``+tools`` or ``+padded`` target is set against the upstream answering the
        # same requests.
        body = split_target(target)[1]
        mine, direct = at(target), at("direct" if body == "plain" else f"direct+{body}")
        if mine is None or direct is None:
            continue
        out[rep] = {
            q: round(mine["latency_ms"][q] - direct["latency_ms"][q], 3) for q in ("p50", "p99")
        }
    return out


def _best(values: Iterable[float | None], pick: Callable[..., float]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return pick(present) if present else None


def summary(
    steps: Sequence[dict[str, Any]], targets: Sequence[str], rss: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per target and mode: added latency at 1 client and max sustained rps, each the best
    of the repetitions (the lowest added latency, the highest rps: on a shared machine
    other work only ever slows a run down), with the mean and every run's value; and RSS."""
    out: dict[str, dict[str, Any]] = {}
    for target in targets:
        entry: dict[str, Any] = {"rss_mib": rss.get(target, {})}
        for stream in MODES:
            mode = "stream" if stream else "non_stream"
            added = added_latency_by_rep(steps, target, stream)
            sustained = max_sustained_by_rep(steps, target, stream)
            entry[mode] = {
                "added_p50_ms": _best((a["p50"] for a in added.values()), min),
                "added_p99_ms": _best((a["p99"] for a in added.values()), min),
                "added_p50_ms_mean": _mean(a["p50"] for a in added.values()),
                "added_p99_ms_mean": _mean(a["p99"] for a in added.values()),
                "added_by_rep": added,
                "max_rps": _best(sustained.values(), max),
                "max_rps_mean": _mean(sustained.values()),
                "max_rps_by_rep": sustained,
                "max_rps_harness_bound": harness_bound_at_max(steps, target, stream),
            }
        out[target] = entry
    return out


# --- verdicts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    name: str
    measured: float | None
    goal: float
    comparison: Literal["<=", ">="]
    unit: str  # "ms", "x" (a ratio), "MiB"
    why_missing: str = ""
    context: str = ""  # the figures behind a ratio, or the floor's own value

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.comparison == "<=":
            return self.measured <= self.goal
        return self.measured >= self.goal

    @property
    def text(self) -> str:
        if self.measured is None:
            return f"not measured ({self.why_missing or 'no data'})"
        if self.met:
            return "target met"
        gap = abs(self.measured - self.goal)
        return f"short by {fmt(gap)} {self.unit}".rstrip()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "verdict": self.text}


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def verdicts(
    summaries: dict[str, dict[str, Any]], skipped: dict[str, str], subject: str = "modelyard"
) -> list[Verdict]:
    """The issue's targets, for ``subject`` (modelyard)."""
    mine = summaries.get(subject, {})
    floor = summaries.get("floor", {})

    def missing(*targets: str) -> str:
        for target in targets:
            if target in skipped:
                return f"{target} skipped: {skipped[target]}"
            if target not in summaries:
                return f"{target} not run"
        return ""

    out: list[Verdict] = []
    for stream in MODES:
        mode = "stream" if stream else "non_stream"
        label = "streaming" if stream else "non-streaming"
        for q, goal in (("p50", 1.5), ("p99", 4.0)):
            key = f"added_{q}_ms"
            theirs = floor.get(mode, {}).get(key)
            out.append(
                Verdict(
                    f"added latency {q} @1 client, {label}",
                    mine.get(mode, {}).get(key),
                    goal,
                    "<=",
                    "ms",
                    missing(subject, "direct"),
                    f"floor adds {fmt(theirs)} ms" if theirs is not None else "",
                )
            )
    for stream in MODES:
        mode = "stream" if stream else "non_stream"
        label = "streaming" if stream else "non-streaming"
        ours = mine.get(mode, {}).get("max_rps")
        for other, goal in (("litellm", 10.0), ("floor", 0.5)):
            figures = summaries.get(other, {}).get(mode, {})
            theirs = figures.get("max_rps")
            bound = " (theirs harness-bound*)" if figures.get("max_rps_harness_bound") else ""
            out.append(
                Verdict(
                    f"max sustained rps, {label}: {subject} / {other}",
                    _ratio(ours, theirs),
                    goal,
                    ">=",
                    "x",
                    missing(other, subject),
                    f"{fmt(ours, 0)} vs {fmt(theirs, 0)} rps{bound}",
                )
            )
    rss = mine.get("rss_mib", {})
    out.append(
        Verdict(
            f"RSS of the {subject} worker after load (no embedded model)",
            rss.get("after"),
            150.0,
            "<=",
            "MiB",
            missing(subject),
            f"{fmt(rss.get('before'), 1)} MiB before the load" if rss else "",
        )
    )
    return out


# --- the working tree against a revision (--modelyard-rev) -------------------------------


@dataclass(frozen=True)
class Comparison:
    """One figure of the working tree's modelyard against a revision's, from the same run:
    a throughput ratio (``ours / theirs``, unit ``x``) or an added-latency difference
    (``ours - theirs``, unit ``ms``), judged against the run-to-run spread: for a ratio the
    larger relative range (max - min) / max of either target's runs, for a difference the
    larger range of either target's runs in ms. With one run there is no spread to judge by."""

    subject: str  # modelyard: the working tree
    baseline: str  # modelyard@REV
    stream: bool
    measure: str
    ours: float | None
    theirs: float | None
    value: float | None
    unit: Literal["x", "ms"]
    spread: float | None  # a fraction for "x" (0.08: 8 %), ms for "ms"; None: fewer than 2 runs
    reps: int
    context: str = ""  # every run's value, ours vs theirs
    # Other processes' CPU (cores) during the steps behind the figure, per run (the most of
    # the run's steps): ours, theirs. Uneven noise makes a same-run comparison less fair.
    others_cores: tuple[dict[int, float | None], dict[int, float | None]] = ({}, {})

    @property
    def worse(self) -> bool | None:
        """Whether the working tree is worse beyond the spread (None: cannot tell)."""
        if self.value is None or self.spread is None:
            return None
        if self.unit == "x":
            return self.value < 1.0 - self.spread
        return self.value > self.spread

    @property
    def text(self) -> str:
        if self.value is None:
            return "not measured"
        if self.spread is None:
            if self.reps < 2:
                return "1 run: no spread (--reps 2+)"
            return "no spread: a run failed or had errors"
        if self.unit == "x":
            if self.value < 1.0 - self.spread:
                return f"slower by {100 * (1.0 - self.spread - self.value):.1f}% beyond the spread"
            if self.value > 1.0 + self.spread:
                return "faster beyond the spread"
            return "within the spread"
        if self.value > self.spread:
            return f"worse by {fmt(self.value - self.spread)} ms beyond the spread"
        if self.value < -self.spread:
            return "better beyond the spread"
        return "within the spread"

    @property
    def spread_text(self) -> str:
        if self.spread is None:
            return "—"
        if self.unit == "x":
            return f"±{100 * self.spread:.1f}%"
        return f"±{fmt(self.spread)} ms"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worse_beyond_spread": self.worse, "verdict": self.text}


def _relative_range(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    if len(present) < 2 or max(present) <= 0:
        return None
    return (max(present) - min(present)) / max(present)


def _range(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return max(present) - min(present) if len(present) >= 2 else None


def _larger(*spreads: float | None) -> float | None:
    """The larger spread of the two targets; None when either had a single run."""
    if any(s is None for s in spreads):
        return None
    return max(s for s in spreads if s is not None)


def _runs(
    ours: dict[int, float | None],
    theirs: dict[int, float | None],
    digits: int,
    prefix: str = "runs ",
) -> str:
    def show(values: dict[int, float | None]) -> str:
        return "/".join(fmt(values[rep], digits) for rep in sorted(values)) or "—"

    return f"{prefix}{show(ours)} vs {show(theirs)}"


def others_during(
    steps: Sequence[dict[str, Any]], target: str, stream: bool, concurrency: int | None = None
) -> dict[int, float | None]:
    """Per run: the most CPU other processes used during the target's steps in a mode (at
    one concurrency when given)."""
    mine = [
        s
        for s in _steps(steps, target, stream)
        if concurrency is None or s["concurrency"] == concurrency
    ]
    return {
        rep: _best((s.get("others_cores") for s in mine if s["rep"] == rep), max)
        for rep in reps_of(mine)
    }


def rps_by_rep(
    steps: Sequence[dict[str, Any]], target: str, stream: bool, concurrency: int
) -> dict[int, float | None]:
    """The target's rps at one concurrency and mode, per repetition (None for a step with
    1 % errors or more)."""
    return {
        s["rep"]: (float(s["rps"]) if s["error_rate"] < MAX_ERROR_RATE else None)
        for s in _steps(steps, target, stream)
        if s["concurrency"] == concurrency
    }


def per_cpu_second_by_rep(
    steps: Sequence[dict[str, Any]], target: str, stream: bool, concurrency: int
) -> dict[int, float | None]:
    """Requests answered per second of the server's own CPU, per repetition: the server's
    cost per request, less disturbed than its rps by what else shares the machine (None
    for a step with 1 % errors or more, or no CPU reading)."""
    return {
        s["rep"]: (
            float(s["rps"]) / s["server_cpu_cores"]
            if s["error_rate"] < MAX_ERROR_RATE and s.get("server_cpu_cores")
            else None
        )
        for s in _steps(steps, target, stream)
        if s["concurrency"] == concurrency
    }


def _ratio_row(
    subject: str,
    baseline: str,
    stream: bool,
    reps: int,
    measure: str,
    ours: dict[int, float | None],
    theirs: dict[int, float | None],
    others_cores: tuple[dict[int, float | None], dict[int, float | None]],
) -> Comparison:
    best_ours, best_theirs = _best(ours.values(), max), _best(theirs.values(), max)
    return Comparison(
        subject,
        baseline,
        stream,
        measure,
        best_ours,
        best_theirs,
        _ratio(best_ours, best_theirs),
        "x",
        _larger(_relative_range(ours.values()), _relative_range(theirs.values())),
        reps,
        _runs(ours, theirs, 0),
        others_cores,
    )


def compare(
    steps: Sequence[dict[str, Any]],
    summaries: dict[str, dict[str, Any]],
    baseline: str,
    subject: str = "modelyard",
) -> list[Comparison]:
    """The working tree (``subject``) against a revision (``baseline``), same run, per mode:
    rps at each concurrency (best run of each), requests per second of the server's CPU at
    the highest concurrency, max sustained rps, added p50 and p99 at 1 client (best run of
    each), each with the run-to-run spread."""
    reps = len(reps_of(steps))
    ours_summary, theirs_summary = summaries.get(subject, {}), summaries.get(baseline, {})
    out: list[Comparison] = []
    for stream in MODES:
        mode = "stream" if stream else "non_stream"
        levels = sorted({s["concurrency"] for s in steps if s["target"] in (subject, baseline)})
        # rps at each level, then the server's cost per request at the busiest one.
        figures = [(f"rps @{c} client{'s' if c > 1 else ''}", rps_by_rep, c) for c in levels]
        figures += [
            (f"requests per server CPU-s @{c}", per_cpu_second_by_rep, c) for c in levels[-1:]
        ]
        for measure, by_rep, concurrency in figures:
            out.append(
                _ratio_row(
                    subject,
                    baseline,
                    stream,
                    reps,
                    measure,
                    by_rep(steps, subject, stream, concurrency),
                    by_rep(steps, baseline, stream, concurrency),
                    (
                        others_during(steps, subject, stream, concurrency),
                        others_during(steps, baseline, stream, concurrency),
                    ),
                )
            )
        out.append(
            _ratio_row(
                subject,
                baseline,
                stream,
                reps,
                "max sustained rps",
                ours_summary.get(mode, {}).get("max_rps_by_rep", {}),
                theirs_summary.get(mode, {}).get("max_rps_by_rep", {}),
                (others_during(steps, subject, stream), others_during(steps, baseline, stream)),
            )
        )
        for q in ("p50", "p99"):
            ours = {
                rep: a[q] for rep, a in ours_summary.get(mode, {}).get("added_by_rep", {}).items()
            }
            theirs = {
                rep: a[q] for rep, a in theirs_summary.get(mode, {}).get("added_by_rep", {}).items()
            }
            best_ours, best_theirs = _best(ours.values(), min), _best(theirs.values(), min)
            difference = (
                round(best_ours - best_theirs, 3)
                if best_ours is not None and best_theirs is not None
                else None
            )
            out.append(
                Comparison(
                    subject,
                    baseline,
                    stream,
                    f"added {q} @1 client",
                    best_ours,
                    best_theirs,
                    difference,
                    "ms",
                    _larger(_range(ours.values()), _range(theirs.values())),
                    reps,
                    _runs(ours, theirs, 2),
                    (
                        others_during(steps, subject, stream, 1),
                        others_during(steps, baseline, stream, 1),
                    ),
                )
            )
    return out


# --- tables ----------------------------------------------------------------------------


def steps_table(steps: Sequence[dict[str, Any]], targets: Sequence[str]) -> Any:
    from rich.table import Table

    reps = reps_of(steps)
    table = Table(
        title=f"Every step: rps and other processes' CPU of each of {len(reps)} run(s); "
        "latency and CPU of the run with the most rps",
        title_justify="left",
        caption="* the load generator's core was >= 90% busy: the harness, not the target, "
        "may have set this rate",
        caption_justify="left",
    )
    for column in ("target", "mode", "clients", "rps", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column in ("target", "mode") else "right")
    table.add_column("server CPU", justify="right")
    table.add_column("core 0/1 busy %", justify="right")
    table.add_column("others (cores)", justify="right")
    for target in targets:
        for stream in MODES:
            mine = _steps(steps, target, stream)
            for concurrency in sorted({s["concurrency"] for s in mine}):
                at = sorted(
                    (s for s in mine if s["concurrency"] == concurrency), key=lambda s: s["rep"]
                )
                best = max(at, key=lambda s: s["rps"])
                errors = sum(s["errors"] for s in at)
                requests = sum(s["requests"] for s in at)
                unfinished = sum(s["unfinished"] for s in at)
                error_text = f"{100 * errors / requests:.2f}%" if requests else "—"
                if unfinished:
                    error_text += f" (+{unfinished} cut)"
                busy = best.get("cpu_busy_pct") or []
                table.add_row(
                    target,
                    "stream" if stream else "non-stream",
                    str(concurrency),
                    " / ".join(
                        fmt(s["rps"], 0) + ("*" if s.get("harness_bound") else "") for s in at
                    ),
                    fmt(best["latency_ms"]["p50"]),
                    fmt(best["latency_ms"]["p99"]),
                    error_text,
                    fmt(best.get("server_cpu_cores")),
                    "/".join(fmt(b, 0) for b in busy),
                    " / ".join(fmt(s.get("others_cores")) for s in at),
                )
    return table


def summary_table(summaries: dict[str, dict[str, Any]], skipped: dict[str, str]) -> Any:
    from rich.table import Table

    table = Table(
        title="Per target: added latency = target - direct at 1 client; best of the runs",
        title_justify="left",
        caption="* reached with the load generator's core >= 90% busy (a lower bound)",
        caption_justify="left",
    )
    for column in (
        "target",
        "added p50/p99 ms",
        "added p50/p99 ms (stream)",
        "max rps",
        "max rps (stream)",
        "RSS MiB before → after",
    ):
        table.add_column(column, justify="left" if column == "target" else "right")
    for target, entry in summaries.items():
        ns, st = entry["non_stream"], entry["stream"]
        rss = entry.get("rss_mib") or {}
        table.add_row(
            target,
            "—" if target == "direct" else f"{fmt(ns['added_p50_ms'])} / {fmt(ns['added_p99_ms'])}",
            "—" if target == "direct" else f"{fmt(st['added_p50_ms'])} / {fmt(st['added_p99_ms'])}",
            fmt(ns["max_rps"], 0) + ("*" if ns.get("max_rps_harness_bound") else ""),
            fmt(st["max_rps"], 0) + ("*" if st.get("max_rps_harness_bound") else ""),
            f"{fmt(rss.get('before'), 1)} → {fmt(rss.get('after'), 1)}",
        )
    for target, why in skipped.items():
        table.add_row(target, f"skipped: {why}", "", "", "", "")
    return table


def verdict_table(found: Sequence[Verdict]) -> Any:
    from rich.table import Table

    short = any(verdict.met is False for verdict in found)
    table = Table(
        title="The issue's targets (modelyard)",
        title_justify="left",
        caption="For a target that falls short, docs/performance.md has the last py-spy "
        "profile of the request path: where the remaining time goes."
        if short
        else None,
        caption_justify="left",
    )
    for column in ("target", "measured", "goal", "verdict", "context"):
        table.add_column(column, justify="right" if column in ("measured", "goal") else "left")
    for verdict in found:
        style = {True: "green", False: "red", None: "yellow"}[verdict.met]
        table.add_row(
            verdict.name,
            f"{fmt(verdict.measured)} {verdict.unit}" if verdict.measured is not None else "—",
            f"{verdict.comparison} {fmt(verdict.goal)} {verdict.unit}",
            f"[{style}]{verdict.text}[/{style}]",
            verdict.context,
        )
    return table


def comparison_table(found: Sequence[Comparison]) -> Any:
    """One revision's comparison (``compare``) as a table."""
    from rich.table import Table

    first = found[0] if found else None
    subject, baseline = (first.subject, first.baseline) if first else ("modelyard", "?")
    reps = first.reps if first else 0
    table = Table(
        title=f"{subject} (working tree) vs {baseline}, same run: ratio = working tree / "
        f"{baseline}, difference = working tree - {baseline}; best of {reps} run(s) each",
        title_justify="left",
        caption="spread: the larger run-to-run range of the two targets, as (max - min) / max "
        "for rps and in ms for added latency; the working tree is worse when a ratio is "
        "below 1 - spread or a difference above the spread. others (cores): other processes' "
        "CPU during the steps behind a figure, each run, working tree vs revision: "
        "when they differ much, so may the two targets' figures"
        + (
            ". One run: no spread measured here; give --reps 2 or more to judge" if reps < 2 else ""
        ),
        caption_justify="left",
    )
    for column in ("mode", "figure", subject, baseline, "ratio / diff", "spread", "verdict"):
        table.add_column(
            column, justify="left" if column in ("mode", "figure", "verdict") else "right"
        )
    table.add_column("each run", justify="left")
    table.add_column("others (cores)", justify="right")
    for row in found:
        digits = 0 if row.unit == "x" else 2
        style = {True: "red", False: "green", None: "yellow"}[row.worse]
        table.add_row(
            "stream" if row.stream else "non-stream",
            row.measure,
            fmt(row.ours, digits),
            fmt(row.theirs, digits),
            (f"{fmt(row.value, 3)}x" if row.unit == "x" else f"{row.value:+.2f} ms")
            if row.value is not None
            else "—",
            row.spread_text,
            f"[{style}]{row.text}[/{style}]",
            row.context,
            _runs(*row.others_cores, 2, prefix=""),
        )
    return table


# --- the soak's request-log check --------------------------------------------------------


def log_check(sent: Iterable[str], logged: dict[str, int]) -> dict[str, Any]:
    """Compare the ``user`` of every request sent with the request log's count per user:
    each must be there exactly once."""
    sent_set = set(sent)
    missing = sorted(sent_set - logged.keys())
    duplicated = {user: n for user, n in logged.items() if user in sent_set and n > 1}
    unknown = sorted(logged.keys() - sent_set)
    return {
        "sent": len(sent_set),
        "logged_rows": sum(logged.values()),
        "logged_once": sum(1 for user in sent_set if logged.get(user) == 1),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "unknown": len(unknown),
        "missing_examples": missing[:10],
        "duplicated_examples": dict(list(duplicated.items())[:10]),
        "exactly_once": not missing and not duplicated and not unknown,
    }
