"""Sampling under a grammar, the way llama.cpp's own ``common_sampler`` does it.

Checking every token of the vocabulary against the grammar each step costs more than the
forward pass of a small model. So the sequence's chain picks a token from the raw logits
first; the grammar checks only that one token, and only when it refuses it are all logits
masked by the grammar and the chain applied again. The reply is the same set of strings
the grammar allows: the chosen token always passes the grammar. The grammar and the chain
accept exactly the generated tokens (never the prompt).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import llama_cpp
import numpy as np

# llama_token_data: {int32 id; float logit; float p}.
TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)


def grammar_sampler(grammar: str, vocab: Any) -> Any:
    """llama.cpp's grammar sampler for GBNF ``grammar`` (rule ``root``); the caller frees it."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if not sampler:
        raise ValueError("llama.cpp could not parse the grammar")
    return sampler


class GrammarSampling:
    """Samples one row of the batch's logits under a grammar. Scheduler thread only: it
    reuses one buffer of ``n_vocab`` candidates."""

    def __init__(self, ctx: Any, n_vocab: int) -> None:
        self._ctx = ctx
        self._n_vocab = n_vocab
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._cells = np.zeros(n_vocab, dtype=TOKEN_DATA)
        self._one = np.zeros(1, dtype=TOKEN_DATA)

    def sample(self, chain: Any, grammar: Any, row: int) -> int:
        token = self._pick(chain, None, row)
        if not self._allows(grammar, token):
            token = self._pick(chain, grammar, row)
        llama_cpp.llama_sampler_accept(grammar, token)
        llama_cpp.llama_sampler_accept(chain, token)
        return token

    def _pick(self, chain: Any, grammar: Any, row: int) -> int:
        logits = llama_cpp.llama_get_logits_ith(self._ctx, row)
        cells = self._cells
        cells["id"] = self._ids
        cells["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        cells["p"] = 0.0
        candidates = _array_of(cells)
        if grammar is not None:
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(candidates))
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(candidates))
        return int(candidates.data[candidates.selected].id)

    def _allows(self, grammar: Any, token: int) -> bool:
        one = self._one
        one["id"], one["logit"], one["p"] = token, 1.0, 0.0
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(_array_of(one)))
        return math.isfinite(float(one["logit"][0]))  # the grammar sets -inf on a refusal


def _array_of(cells: np.ndarray[Any, Any]) -> Any:
    return llama_cpp.llama_token_data_array(
        data=cells.ctypes.data_as(llama_cpp.llama_token_data_p),
        size=len(cells),
        selected=-1,
        sorted=False,
    )
