"""Log-probabilities of one row of llama.cpp logits.

What is reported is the model's own distribution: a log-softmax over the raw logits of
the position, before anything the sampler does (logit bias, repetition penalties,
temperature, top-k/top-p/min-p, a grammar). It is what OpenAI and vLLM (its default
``raw_logprobs``) report: the same tokens get the same logprobs at any temperature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# OpenAI's ceiling of ``top_logprobs`` (vLLM's default ``max_logprobs``).
MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class TokenLogprob:
    """A sampled token's bytes and logprob, and the ``top`` likeliest tokens of its
    position (bytes, logprob), likeliest first."""

    piece: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...]


def log_softmax_top(
    logits: np.ndarray[Any, Any], token: int, k: int
) -> tuple[float, list[tuple[int, float]]]:
    """The logprob of ``token`` and the ``k`` likeliest (token, logprob), likeliest first
    (ties by token id), under a log-softmax of ``logits`` in float64."""
    row = logits.astype(np.float64)
    peak = float(row.max())
    normaliser = peak + float(np.log(np.exp(row - peak).sum()))
    if k <= 0:
        return float(row[token]) - normaliser, []
    k = min(k, len(row))
    best = np.argpartition(-row, k - 1)[:k]
    best = best[np.lexsort((best, -row[best]))]
    return float(row[token]) - normaliser, [(int(t), float(row[t]) - normaliser) for t in best]
