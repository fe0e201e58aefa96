"""Variants of a ``llamacpp`` version: each GGUF written by llama.cpp's quantiser, and each
file (the parent's too) measured by the kind's probe: size, load time, memory, decode
tokens/s, and perplexity with a paired comparison per text."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from modelyard.evaluate.stats import paired_bootstrap
from modelyard.improve.compress.probe import run_probe
from modelyard.improve.compress.protocol import CompressRequest, VariantOut
from modelyard.improve.compress.texts import Texts
from modelyard.registry.protocol import VersionOut

PROBE = "modelyard.engines.llamacpp.probe"
PROBE_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Made:
    """A variant's artifact, the parameters its version gets, and what its lineage adds."""

    uri: str
    parameters: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)


def _path(version: VersionOut) -> Path:
    return Path(version.artifact_uri.removeprefix("file://"))


def source_type(parent: VersionOut) -> str:
    """The parent's weight type (``Q4_1``, ``F16``), from its GGUF's metadata. Blocking."""
    from modelyard.engines.llamacpp.quantise import file_type

    return file_type(_path(parent))


def requantised(source: str) -> bool:
    from modelyard.engines.llamacpp.quantise import is_quantised

    return is_quantised(source)


async def make(
    home: Path, parent: VersionOut, method: str, compression_id: int, threads: int
) -> Made:
    """Write ``parent``'s GGUF as ``method`` under ``home`` (on a worker thread)."""
    from modelyard.engines.llamacpp.quantise import quantise

    name = f"{parent.model}-v{parent.number}-{method.lower()}-c{compression_id}.gguf"
    target = home / "artifacts" / "variants" / name
    await asyncio.to_thread(quantise, _path(parent), target, method, threads or None)
    return Made(str(target), dict(parent.parameters), {"quantiser": _quantiser()})


def _quantiser() -> dict[str, str]:
    try:
        version = metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"tool": "llama.cpp llama_model_quantize", "llama_cpp_python": version}


async def measure(
    version: VersionOut, request: CompressRequest, texts: Texts | None
) -> dict[str, Any]:
    """The probe's measurements of the version's GGUF, flat (numbers a gate can name), and
    ``samples``: each text's mean NLL per token, for the paired comparison."""
    raw = await run_probe(
        PROBE,
        {
            "gguf": str(_path(version)),
            "texts": texts.texts if texts is not None else [],
            "streams": request.streams,
            "max_tokens": request.max_tokens,
            "threads": request.threads,
        },
        PROBE_TIMEOUT_S,
    )
    flat: dict[str, Any] = {
        "file_type": raw["file_type"],
        "size_bytes": raw["size_bytes"],
        "size_mb": round(raw["size_bytes"] / 1e6, 2),
        "parameters": raw["parameters"],
        "load_s": raw["load_s"],
        "rss_mb": raw["rss_mb"],
        "peak_rss_mb": raw["peak_rss_mb"],
    }
    for level in raw["throughput"]:
        count = level["streams"]
        flat[f"tokens_per_s_{count}"] = level["decode_tokens_per_s"]
        flat[f"aggregate_tokens_per_s_{count}"] = level["aggregate_tokens_per_s"]
        flat[f"completion_tokens_{count}"] = level["completion_tokens"]
    if raw["perplexity"] is not None:
        flat["perplexity"] = raw["perplexity"]
        flat["perplexity_tokens"] = raw["perplexity_tokens"]
        flat["perplexity_texts"] = raw["perplexity_texts"]
    flat["samples"] = raw["text_nll"]
    return flat


def compare(
    parent: list[Any], variant: list[Any], texts: Texts | None
) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    """The paired bootstrap of the mean per-text NLL (variant minus parent) over the texts
    both scored; ``perplexity_ratio`` is exp of the difference. Nothing is added to either
    row's measurements (perplexity is measured by the probe)."""
    pairs = [
        (a, b) for a, b in zip(parent, variant, strict=True) if a is not None and b is not None
    ]
    if len(pairs) < 2:
        return {}, {}, {}
    result = paired_bootstrap([a for a, _ in pairs], [b for _, b in pairs], metric="nll")
    comparison = {
        "nll_per_token": {
            "texts": len(pairs),
            "parent": round(result.baseline, 6),
            "variant": round(result.candidate, 6),
            "difference": round(result.difference, 6),
            "ci_low": round(result.ci_low, 6),
            "ci_high": round(result.ci_high, 6),
            "confidence": result.confidence,
            "significant": result.significant,
            "perplexity_ratio": round(math.exp(result.difference), 4),
        }
    }
    return comparison, {}, {}


def parent_notes(parent: VariantOut) -> list[str]:
    """What a reader of the table must know about the parent."""
    if not requantised(parent.method):
        return []
    return [
        f"already {parent.method}: every variant is re-quantised from these weights, and "
        f"re-quantising cannot recover what {parent.method} lost, so no variant models "
        "text better than the parent except by chance; a wider type only costs size and "
        "speed here"
    ]


def notes(parent: VariantOut, row: VariantOut) -> list[str]:
    """What a reader of the table must know about a variant."""
    said = []
    nll = row.comparison.get("nll_per_token")
    if nll:
        if not nll["significant"]:
            said.append("perplexity indistinguishable from the parent's on these texts (95 % CI)")
        else:
            ratio = nll["perplexity_ratio"]
            said.append(f"perplexity {ratio:.3f}x the parent's (the 95 % CI excludes 1)")
    paired = row.comparison.get("eval")
    if paired:
        for name, difference in paired["differences"].items():
            verdict = "significant" if difference["significant"] else "not significant"
            said.append(
                f"{paired['task']} {name}: {difference['candidate']:.4f} against "
                f"{difference['baseline']:.4f}, difference {difference['difference']:+.4f} "
                f"[{difference['ci_low']:+.4f}, {difference['ci_high']:+.4f}] ({verdict}; "
                f"eval runs {paired['parent_run']} and {paired['variant_run']})"
            )
    return said
