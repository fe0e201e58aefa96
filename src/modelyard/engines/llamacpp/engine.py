"""llama.cpp engine: a GGUF served in-process with continuous batching.

One llama.cpp context holds up to ``max_num_seqs`` sequences, each with its own KV stream
of ``n_ctx`` tokens; the scheduler thread decodes all of them in one batch per step (see
``scheduler.py``). More requests wait in a FIFO queue of ``max_waiting``; past that the
engine refuses with 503 and ``Retry-After``. Closing a stream (client gone) cancels its
sequence before the next step.

A request's ``response_format`` (a JSON schema, or any JSON object) becomes a grammar that
constrains sampling (``grammar.py``); a schema that cannot be compiled is refused with 400.

A version's parameters (``LlamaCppParameters``) override the kind's settings
(``LlamaCppSettings``) and set sampling defaults for fields a request leaves out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import TemplateError

from modelyard import config
from modelyard.engines.base import (
    Chunk,
    ContextLengthExceeded,
    Engine,
    EngineError,
    EngineInfo,
    EngineNotReady,
    EngineSpec,
    GenerationRequest,
)
from modelyard.engines.capabilities import GENERATES
from modelyard.engines.llamacpp.choices import ChoiceOptions
from modelyard.engines.llamacpp.grammar import GrammarCache
from modelyard.engines.llamacpp.parameters import LlamaCppParameters, LlamaCppSettings
from modelyard.engines.llamacpp.sampling import Sampling
from modelyard.engines.llamacpp.scheduler import Scheduler, SchedulerLimits
from modelyard.engines.llamacpp.sequence import Emit, Job
from modelyard.engines.llamacpp.tool_grammar import tool_grammar
from modelyard.engines.llamacpp.tool_output import ToolOutput
from modelyard.engines.llamacpp.tools import ToolPlan, chat_messages, native_tools

T = TypeVar("T")


@dataclass(frozen=True)
class LlamaCppInfo(EngineInfo):
    parameters: int | None = None  # weights in the model, once it is loaded
    description: str | None = None  # llama.cpp's: architecture, size, quantisation
    threads: int | None = None
    prefill_chunk: int | None = None
    sampling_defaults: dict[str, float] | None = None
    # The scheduler's load, while it runs:
    active: int | None = None
    waiting: int | None = None
    max_num_seqs: int | None = None
    max_waiting: int | None = None
    steps: int | None = None
    reused_prompt_tokens: int | None = None
    prefilled_prompt_tokens: int | None = None


class LlamaCppEngine(Engine):
    kind = "llamacpp"
    capabilities = replace(
        GENERATES,
        seed=True,
        structured_output=True,
        tools=True,
        logprobs=True,  # choices.py: n, logprobs and logit_bias
        multiple_choices=True,
        logit_bias=True,
    )
    Parameters = LlamaCppParameters
    Settings = LlamaCppSettings

    def __init__(self, spec: EngineSpec, settings: config.Settings) -> None:
        super().__init__(spec, settings)
        params = self.read_parameters(LlamaCppParameters)
        tuning = LlamaCppSettings()
        self.path = Path(spec.artifact_uri.removeprefix("file://"))
        self.n_ctx = _given(params.n_ctx, tuning.n_ctx)
        self.limits = SchedulerLimits(
            max_num_seqs=_given(params.max_num_seqs, tuning.max_num_seqs),
            max_waiting=_given(params.max_waiting, tuning.max_waiting),
            prefill_chunk=_given(params.prefill_chunk, tuning.prefill_chunk),
            prefix_cache=_given(params.prefix_cache, tuning.prefix_cache),
        )
        self.threads = _given(params.threads, tuning.threads) or (os.cpu_count() or 1)
        self.defaults = params.sampling_defaults()
        self._model: Any = None
        self._ctx: Any = None
        self._scheduler: Scheduler | None = None
        self._grammars: GrammarCache | None = None
        self._formatter: Any = None
        self._template: str | None = None
        self._weights: int | None = None
        self._description: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.path.is_file():
            raise EngineError(f"GGUF file {self.path} does not exist")
        await asyncio.to_thread(self._load)
        assert self._scheduler is not None
        self._scheduler.start()

    def _load(self) -> None:
        import llama_cpp

        # What Llama(verbose=False) does: llama.cpp's own log only for errors.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        from llama_cpp._internals import LlamaModel
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model_params = llama_cpp.llama_model_default_params()
        # verbose=False would point the whole process's stdout and stderr at /dev/null while
        # the model loads (a dup2, not a logger), swallowing whatever the server prints then,
        # its start-up lines included; the log level above already quiets llama.cpp.
        model = LlamaModel(path_model=str(self.path), params=model_params, verbose=True)
        params = llama_cpp.llama_context_default_params()
        params.n_seq_max = self.limits.max_num_seqs
        params.n_ctx = self.n_ctx * self.limits.max_num_seqs
        params.n_batch = params.n_ubatch = self.limits.prefill_chunk + self.limits.max_num_seqs
        params.n_threads = params.n_threads_batch = self.threads
        # A KV stream per sequence: attention then sums over exactly the cells it would
        # alone, so a batched sequence gives the same tokens as decoded alone. (A unified
        # buffer interleaves other sequences' masked cells, which regroups the sums.)
        params.kv_unified = False
        ctx = llama_cpp.llama_init_from_model(model.model, params)
        if not ctx:
            model.close()  # type: ignore[no-untyped-call]
            raise EngineError(f"llama.cpp could not create a context for {self.path.name}")
        self._model, self._ctx = model, ctx
        description = ctypes.create_string_buffer(128)
        llama_cpp.llama_model_desc(model.model, description, len(description))
        self._weights = int(llama_cpp.llama_model_n_params(model.model))
        self._description = description.value.decode("utf-8", "replace")
        self._template = model.metadata().get("tokenizer.chat_template")
        if self._template:
            self._formatter = Jinja2ChatFormatter(
                template=self._template,
                eos_token=model.token_get_text(model.token_eos()),
                bos_token=model.token_get_text(model.token_bos()),
            )
        self._scheduler = Scheduler(model, ctx, self.limits)
        self._grammars = GrammarCache(model.vocab)

    async def aclose(self) -> None:
        if self._scheduler is not None:
            await asyncio.to_thread(self._scheduler.stop)
            self._scheduler = None
        if self._ctx is not None:
            import llama_cpp

            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model is not None:
            self._model.close()
            self._model = None

    def info(self) -> LlamaCppInfo:
        info = LlamaCppInfo(
            kind=self.kind,
            context_length=self.n_ctx,
            chat_template=self._template,
            size_bytes=self.path.stat().st_size if self.path.is_file() else None,
            parameters=self._weights,
            description=self._description,
            threads=self.threads,
            prefill_chunk=self.limits.prefill_chunk,
            sampling_defaults=self.defaults,
        )
        if self._scheduler is None:
            return info
        load = self._scheduler.load()
        return replace(
            info,
            active=load.active,
            waiting=load.waiting,
            max_num_seqs=load.max_num_seqs,
            max_waiting=load.max_waiting,
            steps=load.steps,
            reused_prompt_tokens=load.reused_prompt_tokens,
            prefilled_prompt_tokens=load.prefilled_prompt_tokens,
        )

    # -- requests -------------------------------------------------------------------------

    def tokenize_prompt(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens: chat messages through the GGUF's own chat template."""
        if self._model is None:
            raise EngineNotReady(f"{self.spec.model}@{self.spec.version} is not loaded")
        if request.prompt is not None:
            return list(self._model.tokenize(request.prompt.encode(), True, False))
        if self._formatter is None:
            raise EngineError(
                f"{self.path.name} has no chat template in its metadata; use /v1/completions",
                status=400,
                code="no_chat_template",
            )
        plan, native = ToolPlan.of(request), native_tools(self._template)
        messages, tools = chat_messages(request.messages or (), plan, native)
        try:
            formatted = self._formatter(messages=messages, **tools)
        except (TemplateError, ValueError) as error:
            raise EngineError(
                f"the model's chat template refused these messages: {error}",
                status=400,
                code="invalid_messages",
            ) from error
        return list(
            self._model.tokenize(formatted.prompt.encode(), not formatted.added_special, True)
        )

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        scheduler, grammars = self._scheduler, self._grammars
        if scheduler is None or grammars is None:
            raise EngineNotReady(f"{self.spec.model}@{self.spec.version} is not loaded")
        options = ChoiceOptions.of(request, self.limits.max_num_seqs, scheduler.n_vocab)
        grammar = None
        plan = ToolPlan.of(request) if request.messages is not None else None
        if plan is not None:  # tools: the grammar of their calls (tool_grammar.py)
            grammar = await asyncio.to_thread(tool_grammar, plan, self._model.vocab)
        elif request.response_format is not None:
            # Compiling a new schema is CPU work; a known one is a cache hit.
            grammar = await asyncio.to_thread(grammars.grammar_for, request.response_format)
        prompt = await asyncio.to_thread(self.tokenize_prompt, request)
        max_tokens = self._token_budget(len(prompt), request.max_tokens)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()

        def emit(item: Chunk | BaseException) -> None:
            # The loop may be gone at shutdown; then nobody is left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

        sampling = options.biased(Sampling.of(request, self.defaults))
        sink: Emit = emit if plan is None else ToolOutput(plan, request.stream, emit)
        job = Job(prompt, max_tokens, list(request.stop), sampling, sink, grammar)
        job.choices = options.choices(request, len(prompt), emit)  # n, logprobs: choices.py
        scheduler.submit(job)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item if isinstance(item, EngineError) else EngineError(str(item))
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if not job.cancel.is_set():
                scheduler.cancel(job)

    def _token_budget(self, prompt_tokens: int, asked: int | None) -> int:
        room = self.n_ctx - prompt_tokens
        if room <= 0 or (asked is not None and asked > room):
            wanted = asked if asked is not None else 1
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.n_ctx} tokens. However, you "
                f"requested {prompt_tokens + wanted} tokens ({prompt_tokens} in the messages, "
                f"{wanted} in the completion). Please reduce the length of the messages or "
                "the completion."
            )
        return asked if asked is not None else room


def _given(value: T | None, default: T) -> T:
    """A version's parameter where it sets one (0 and False included), else the setting."""
    return default if value is None else value
