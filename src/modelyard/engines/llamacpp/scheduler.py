"""Continuous batching over one llama.cpp context.

A dedicated thread runs steps. Each step puts into one ``llama_batch`` the next token of
every decoding sequence plus, within a budget of ``prefill_chunk`` tokens, the next slice
of prompts still being read, calls ``llama_decode`` once, and samples one token for each
sequence whose logits the batch produced. New jobs join between steps, finished or
cancelled ones leave at once and their KV cells are cleared, so a long prompt never
freezes running streams and a freed sequence id goes straight to the next waiting job.

A job of ``n`` choices waits for ``n`` free ids and takes them together. Its first
sequence reads the prompt; in the step that reads the prompt's last token its KV stream is
copied to the others (``llama_memory_seq_cp``), which sample their first tokens from the
same logits row, each with its own sampler (seed + choice index), then decode on their own.
A cancelled job frees all of them.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

import llama_cpp
import numpy as np

from modelyard.engines.base import EngineError
from modelyard.engines.llamacpp.constrained import GrammarSampling, grammar_sampler
from modelyard.engines.llamacpp.logprobs import TokenLogprob, log_softmax_top
from modelyard.engines.llamacpp.sampling import sampler_chain
from modelyard.engines.llamacpp.sequence import Job, Sequence
from modelyard.engines.llamacpp.text import StopScanner

log = logging.getLogger(__name__)

# What calls through llama-cpp-python's ctypes bindings raise when misused or failing.
BINDING_ERRORS = (ctypes.ArgumentError, TypeError, ValueError, RuntimeError, OSError)


class EngineOverloaded(EngineError):
    """The waiting queue is full; the client should retry later."""

    status = 503
    code = "engine_overloaded"
    retry_after_s = 1


@dataclass(frozen=True)
class SchedulerLimits:
    max_num_seqs: int
    max_waiting: int
    prefill_chunk: int
    prefix_cache: bool = True


@dataclass(frozen=True)
class SchedulerLoad:
    active: int
    waiting: int
    max_num_seqs: int
    max_waiting: int
    steps: int
    reused_prompt_tokens: int
    prefilled_prompt_tokens: int = 0  # prompt tokens read (decoded), reused ones not


class Scheduler:
    """Owns the context (``ctx``); only its thread touches it after ``start``."""

    def __init__(self, model: Any, ctx: Any, limits: SchedulerLimits) -> None:
        self._model = model  # llama_cpp._internals.LlamaModel
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._vocab = model.vocab
        self._n_vocab = self.n_vocab = model.n_vocab()
        self._grammar_sampling = GrammarSampling(ctx, self._n_vocab)
        self.limits = limits
        self._batch_size = limits.prefill_chunk + limits.max_num_seqs
        self._batch = llama_cpp.llama_batch_init(self._batch_size, 0, 1)
        self._waiting: collections.deque[Job] = collections.deque()
        self._active: list[Sequence] = []
        self._free_ids = list(range(limits.max_num_seqs - 1, -1, -1))
        # Tokens each free sequence id's KV stream still holds, for prefix reuse.
        self._cached: dict[int, list[int]] = {}
        self._reused_tokens = 0
        self._prefilled_tokens = 0
        self._wake = threading.Condition()
        self._stopping = False
        self._steps = 0
        self._thread = threading.Thread(target=self._run, name="llamacpp-scheduler", daemon=True)

    # -- called from the event loop -------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._wake:
            if self._stopping:
                raise EngineError("the engine is shutting down", status=503)
            if len(self._waiting) >= self.limits.max_waiting:
                raise EngineOverloaded(
                    f"{len(self._waiting)} requests are already waiting for this model "
                    f"(limit {self.limits.max_waiting}); retry shortly"
                )
            self._waiting.append(job)
            self._wake.notify()

    def cancel(self, job: Job) -> None:
        """Stop ``job``: dropped from the queue now, or from the batch before the next step."""
        job.cancel.set()
        with self._wake:
            if job in self._waiting:
                self._waiting.remove(job)
            self._wake.notify()

    def load(self) -> SchedulerLoad:
        with self._wake:
            return SchedulerLoad(
                active=len(self._active),
                waiting=len(self._waiting),
                max_num_seqs=self.limits.max_num_seqs,
                max_waiting=self.limits.max_waiting,
                steps=self._steps,
                reused_prompt_tokens=self._reused_tokens,
                prefilled_prompt_tokens=self._prefilled_tokens,
            )

    def stop(self) -> None:
        """Cancel everything, end the thread and free the batch (the caller frees ctx)."""
        with self._wake:
            self._stopping = True
            for job in self._waiting:
                job.cancel.set()
            self._waiting.clear()
            for sequence in self._active:
                sequence.job.cancel.set()
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join()
        llama_cpp.llama_batch_free(self._batch)

    # -- the scheduler thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._active and not self._waiting:
                    self._wake.wait()
                if self._stopping:
                    break
                self._admit()
            self._reap_cancelled()
            if self._active:
                try:
                    self._step()
                except BINDING_ERRORS as error:
                    # Never die silently: every waiting caller would hang.
                    log.exception("scheduler step failed; failing the active sequences")
                    for sequence in list(self._active):
                        sequence.job.emit(EngineError(f"llama.cpp step failed: {error}"))
                        self._leave(sequence, keep_cache=False)
        for sequence in list(self._active):
            self._leave(sequence)

    def _admit(self) -> None:
        # First come, first served: a job of n choices waits for n free ids.
        while self._waiting and len(self._free_ids) >= self._waiting[0].n:
            job = self._waiting.popleft()
            built = self._all_samplers(job)
            if built is None:
                continue
            seq_id, reuse = self._pick_stream(job.prompt)
            self._free_ids.remove(seq_id)
            llama_cpp.llama_memory_seq_rm(self._memory, seq_id, reuse, -1)
            (sampler, grammar), *others = built
            sequence = Sequence(job, seq_id, sampler, StopScanner(job.stops), grammar)
            sequence.prefilled = reuse  # found in the stream's cache: not read again
            for index, (chain, constraint) in enumerate(others, 1):
                follower_id = self._free_ids.pop()
                self._cached.pop(follower_id, None)  # its stream gets a copy of the prompt
                follower = Sequence(job, follower_id, chain, StopScanner(job.stops), constraint)
                follower.index = index
                sequence.followers.append(follower)
            self._reused_tokens += reuse
            self._active.append(sequence)

    def _all_samplers(self, job: Job) -> list[tuple[Any, Any]] | None:
        """A sampler chain (and grammar) per choice; None, the job told, if one failed."""
        built: list[tuple[Any, Any]] = []
        try:
            for index in range(job.n):
                built.append(self._samplers(job, index))
        except BINDING_ERRORS as error:
            log.exception("could not build a sampler")
            for chain, grammar in built:
                _free_samplers(chain, grammar)
            job.emit(EngineError(f"could not build the sampler: {error}"))
            return None
        return built

    def _samplers(self, job: Job, index: int = 0) -> tuple[Any, Any]:
        """Choice ``index``'s sampler chain (seeded with the job's seed + ``index``), and
        its grammar sampler when its reply is constrained."""
        sampling = job.sampling
        if index:
            sampling = replace(sampling, seed=(sampling.seed + index) & 0xFFFFFFFF)
        chain = sampler_chain(sampling, self._n_vocab, job.prompt)
        if job.grammar is None:
            return chain, None
        try:
            return chain, grammar_sampler(job.grammar, self._vocab)
        except BINDING_ERRORS:
            llama_cpp.llama_sampler_free(chain)
            raise

    def _pick_stream(self, prompt: list[int]) -> tuple[int, int]:
        """The free sequence id whose cached tokens share the longest prefix with
        ``prompt``, and how many of them to keep (at least one prompt token is left to
        read: its logits give the first sampled token)."""
        best_id, best = self._free_ids[-1], 0
        if self.limits.prefix_cache:
            for seq_id in self._free_ids:
                shared = _common_prefix(self._cached.get(seq_id, ()), prompt)
                if shared > best:
                    best_id, best = seq_id, shared
        return best_id, min(best, len(prompt) - 1)

    def _reap_cancelled(self) -> None:
        for sequence in [s for s in self._active if s.job.cancel.is_set()]:
            self._leave(sequence)

    def _step(self) -> None:
        rows = self._fill_batch()
        if not rows:
            return
        status = llama_cpp.llama_decode(self._ctx, self._batch)
        self._steps += 1
        if status != 0:
            error = EngineError(f"llama_decode failed with status {status}")
            for sequence in rows:
                sequence.job.emit(error)
                self._leave(sequence, keep_cache=False)
            return
        for sequence in rows:
            if sequence.batch_index < 0:
                continue
            followers = self._spawn(sequence) if sequence.followers else ()
            self._advance(sequence)
            for follower in followers:  # n > 1: the prompt was just read; same logits row
                self._advance(follower)

    def _advance(self, sequence: Sequence) -> None:
        """Sample the sequence's next token from its batch row and pass it on."""
        token = self._sample(sequence)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            finish = sequence.accept(token, None)
        elif sequence.job.top_logprobs is None:
            finish = sequence.accept(token, self._piece(token))
        else:
            finish = sequence.accept(token, self._piece(token), self._logprob(sequence, token))
        if finish is not None:
            self._leave(sequence)  # before the caller hears of it, so its id is free
            sequence.finish(finish)

    def _spawn(self, sequence: Sequence) -> list[Sequence]:
        """When ``sequence`` has just read its prompt, its followers (the job's other
        choices) get a copy of its KV stream and its logits row, and join the batch."""
        followers, sequence.followers = sequence.followers, []
        for follower in followers:
            llama_cpp.llama_memory_seq_rm(self._memory, follower.seq_id, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._memory, sequence.seq_id, follower.seq_id, -1, -1)
            follower.prefilled = len(sequence.job.prompt)
            follower.batch_index = sequence.batch_index
            with self._wake:
                self._active.append(follower)
        return followers

    def _logprob(self, sequence: Sequence, token: int) -> TokenLogprob:
        """``token``'s logprob and the job's top alternatives, from the raw logits of the
        sequence's row (``logprobs.py`` says which distribution)."""
        row = llama_cpp.llama_get_logits_ith(self._ctx, sequence.batch_index)
        logits = np.ctypeslib.as_array(row, shape=(self._n_vocab,))
        logprob, top = log_softmax_top(logits, token, sequence.job.top_logprobs or 0)
        pieces = tuple((self._piece(t, special=True), value) for t, value in top)
        return TokenLogprob(self._piece(token, special=True), logprob, pieces)

    def _sample(self, sequence: Sequence) -> int:
        if sequence.grammar is not None:
            return self._grammar_sampling.sample(
                sequence.sampler, sequence.grammar, sequence.batch_index
            )
        return int(
            llama_cpp.llama_sampler_sample(sequence.sampler, self._ctx, sequence.batch_index)
        )

    def _fill_batch(self) -> list[Sequence]:
        """Decode rows first (one token each), then prompt slices up to the budget."""
        batch = self._batch
        n = 0
        rows: list[Sequence] = []
        for sequence in self._active:
            sequence.batch_index = -1
            if sequence.decoding:
                self._put(n, sequence.last_token, sequence.position, sequence.seq_id, True)
                sequence.batch_index = n
                n += 1
                rows.append(sequence)
        budget = self.limits.prefill_chunk
        for sequence in self._active:
            if sequence.decoding or budget <= 0:
                continue
            prompt = sequence.job.prompt
            take = min(budget, len(prompt) - sequence.prefilled, self._batch_size - n)
            for offset in range(take):
                position = sequence.prefilled + offset
                last = position == len(prompt) - 1
                self._put(n, prompt[position], position, sequence.seq_id, last)
                if last:
                    sequence.batch_index = n
                n += 1
            sequence.prefilled += take
            self._prefilled_tokens += take
            budget -= take
            rows.append(sequence)
        batch.n_tokens = n
        return rows

    def _put(self, row: int, token: int, position: int, seq_id: int, logits: bool) -> None:
        batch = self._batch
        batch.token[row] = token
        batch.pos[row] = position
        batch.n_seq_id[row] = 1
        batch.seq_id[row][0] = seq_id
        batch.logits[row] = logits

    def _piece(self, token: int, *, special: bool = False) -> bytes:
        """The token's bytes; ``special``: control tokens as their text (``<|im_end|>``)."""
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, 64, 0, special)
        if size < 0:  # the piece is longer than the buffer; ask again with its size
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    def _leave(self, sequence: Sequence, *, keep_cache: bool = True) -> None:
        """Free the sequence id; its KV stream stays filled for a later shared prefix.
        Followers that never joined (the prompt was not read yet) are freed with it."""
        if keep_cache and self.limits.prefix_cache:
            self._cached[sequence.seq_id] = sequence.tokens_in_cache()
        else:
            llama_cpp.llama_memory_seq_rm(self._memory, sequence.seq_id, -1, -1)
            self._cached.pop(sequence.seq_id, None)
        leaving, sequence.followers = [sequence, *sequence.followers], []
        for gone in leaving:
            _free_samplers(gone.sampler, gone.grammar)
        with self._wake:
            self._active.remove(sequence)
            self._free_ids.extend(gone.seq_id for gone in leaving)


def _free_samplers(chain: Any, grammar: Any) -> None:
    llama_cpp.llama_sampler_free(chain)
    if grammar is not None:
        llama_cpp.llama_sampler_free(grammar)


def _common_prefix(cached: list[int] | tuple[()], prompt: list[int]) -> int:
    shared = 0
    for held, wanted in zip(cached, prompt, strict=False):
        if held != wanted:
            break
        shared += 1
    return shared
