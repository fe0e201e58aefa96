"""Per-sequence sampling: settings after defaults, and the llama.cpp sampler chain for them."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import llama_cpp

from modelyard.engines.base import GenerationRequest

# Tokens the repetition penalties look back over (llama-cpp-python's default).
PENALTY_WINDOW = 64


@dataclass(frozen=True)
class Sampling:
    """Sampling settings of one request, after the version's defaults were applied."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    seed: int
    # (token id, bias) pairs added to the logits before any other sampler (``logit_bias``).
    logit_bias: tuple[tuple[int, float], ...] = ()

    @classmethod
    def of(cls, request: GenerationRequest, defaults: Mapping[str, Any]) -> Sampling:
        def pick(value: float | None, name: str, fallback: float) -> float:
            return float(value if value is not None else defaults.get(name, fallback))

        return cls(
            temperature=pick(request.temperature, "temperature", 1.0),
            top_p=pick(request.top_p, "top_p", 1.0),
            top_k=int(defaults.get("top_k", 40)),
            min_p=float(defaults.get("min_p", 0.05)),
            repeat_penalty=float(defaults.get("repeat_penalty", 1.0)),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            seed=request.seed if request.seed is not None else random.getrandbits(31),
        )

    @property
    def penalised(self) -> bool:
        return (self.repeat_penalty, self.presence_penalty, self.frequency_penalty) != (1, 0, 0)


def sampler_chain(sampling: Sampling, n_vocab: int, history: list[int]) -> Any:
    """A llama.cpp sampler chain in llama-cpp-python's order (logit bias, penalties, top-k,
    top-p, min-p, temperature, distribution; greedy at temperature 0). ``history`` primes
    the penalty window with the prompt's last tokens. The caller frees it."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = llama_cpp.llama_sampler_chain_add
    if sampling.logit_bias:
        add(chain, logit_bias_sampler(n_vocab, sampling.logit_bias))
    if sampling.penalised:
        penalties = llama_cpp.llama_sampler_init_penalties(
            n_vocab,
            PENALTY_WINDOW,
            sampling.repeat_penalty,
            sampling.frequency_penalty,
            sampling.presence_penalty,
        )
        # Primed alone: the prompt reaches the penalty window only, never a grammar.
        for token in history[-PENALTY_WINDOW:]:
            llama_cpp.llama_sampler_accept(penalties, token)
        add(chain, penalties)
    if sampling.temperature == 0.0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
    else:
        add(chain, llama_cpp.llama_sampler_init_top_k(sampling.top_k))
        add(chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
        add(chain, llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
        add(chain, llama_cpp.llama_sampler_init_temp(sampling.temperature))
        add(chain, llama_cpp.llama_sampler_init_dist(sampling.seed))
    return chain


def logit_bias_sampler(n_vocab: int, biases: tuple[tuple[int, float], ...]) -> Any:
    """llama.cpp's logit-bias sampler (it copies the pairs)."""
    pairs = (llama_cpp.llama_logit_bias * len(biases))(
        *(llama_cpp.llama_logit_bias(token, bias) for token, bias in biases)
    )
    return llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(biases), pairs)
