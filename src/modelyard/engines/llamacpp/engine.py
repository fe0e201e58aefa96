"""llama.cpp engine: a few contexts over one memory-mapped GGUF, generating in worker threads.

Each request borrows a free context ("slot") and generates in a thread, so the event loop
stays free and up to ``llamacpp_slots`` requests make progress at once; more wait in FIFO
order. Closing the stream (client gone) sets a cancel flag the thread checks every token,
and the slot returns to the pool as soon as the thread has stopped.

Version parameters: ``n_ctx``, ``slots``, ``threads`` (override the settings) and sampling
defaults for fields a request leaves out: ``temperature``, ``top_p``, ``top_k``, ``min_p``,
``repeat_penalty``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from modelyard.config import Settings
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
from modelyard.engines.llamacpp.slot import Job, Sampling, Slot

SAMPLING_DEFAULTS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty")


class LlamaCppEngine(Engine):
    kind = "llamacpp"

    def __init__(self, spec: EngineSpec, settings: Settings) -> None:
        super().__init__(spec, settings)
        params = spec.parameters
        self.path = Path(spec.artifact_uri.removeprefix("file://"))
        self.n_ctx = int(params.get("n_ctx", settings.llamacpp_n_ctx))
        self.slot_count = max(1, int(params.get("slots", settings.llamacpp_slots)))
        threads = int(params.get("threads", settings.llamacpp_threads))
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.slot_count)
        self.defaults = {k: params[k] for k in SAMPLING_DEFAULTS if k in params}
        self._slots: list[Slot] = []
        self._free: asyncio.Queue[Slot] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(self.slot_count, thread_name_prefix="llamacpp")
        self._cancels: set[threading.Event] = set()
        self._formatter: Any = None
        self._template: str | None = None

    async def start(self) -> None:
        if not self.path.is_file():
            raise EngineError(f"GGUF file {self.path} does not exist")
        self._slots = await asyncio.to_thread(self._load)
        for slot in self._slots:
            self._free.put_nowait(slot)

    def _load(self) -> list[Slot]:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        slots = [
            Slot(
                Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    verbose=False,
                )
            )
            for _ in range(self.slot_count)
        ]
        llama = slots[0].llama
        self._template = llama.metadata.get("tokenizer.chat_template")
        if self._template:
            model = llama._model
            self._formatter = Jinja2ChatFormatter(
                template=self._template,
                eos_token=model.token_get_text(llama.token_eos()),
                bos_token=model.token_get_text(llama.token_bos()),
            )
        return slots

    async def aclose(self) -> None:
        for cancel in list(self._cancels):
            cancel.set()  # running generations stop within a token
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        for slot in self._slots:
            slot.llama.close()
        self._slots = []

    def info(self) -> EngineInfo:
        return EngineInfo(
            kind=self.kind,
            context_length=self.n_ctx,
            chat_template=self._template,
            size_bytes=self.path.stat().st_size if self.path.is_file() else None,
            details={
                "slots": self.slot_count,
                "threads_per_slot": self.threads,
                "free_slots": self._free.qsize(),
                "sampling_defaults": self.defaults,
            },
        )

    def tokenize_prompt(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens: chat messages through the GGUF's own chat template."""
        if not self._slots:
            raise EngineNotReady(f"{self.spec.model}@{self.spec.version} is not loaded")
        llama = self._slots[0].llama
        if request.prompt is not None:
            return list(llama.tokenize(request.prompt.encode(), add_bos=True, special=False))
        if self._formatter is None:
            raise EngineError(
                f"{self.path.name} has no chat template in its metadata; use /v1/completions",
                status=400,
                code="no_chat_template",
            )
        messages = [{"role": m.role, "content": m.content} for m in request.messages or ()]
        try:
            formatted = self._formatter(messages=messages)
        except (TemplateError, ValueError) as error:
            raise EngineError(
                f"the model's chat template refused these messages: {error}",
                status=400,
                code="invalid_messages",
            ) from error
        return list(
            llama.tokenize(
                formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
            )
        )

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        prompt = await asyncio.to_thread(self.tokenize_prompt, request)
        max_tokens = self._token_budget(len(prompt), request.max_tokens)
        sampling = Sampling.of(request, self.defaults)
        slot = await self._free.get()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()
        cancel = threading.Event()
        self._cancels.add(cancel)

        def emit(item: Chunk | BaseException) -> None:
            # The loop may be gone at shutdown; then nobody is left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

        try:
            job = Job(prompt, max_tokens, list(request.stop), sampling, cancel, emit)
            work = loop.run_in_executor(self._executor, slot.run, job)
        except RuntimeError:
            self._cancels.discard(cancel)
            self._free.put_nowait(slot)
            raise EngineNotReady("the engine is shutting down") from None

        def release(_done: object) -> None:
            self._cancels.discard(cancel)
            self._free.put_nowait(slot)

        work.add_done_callback(release)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise EngineError(f"llama.cpp failed: {item}") from item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            cancel.set()

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
