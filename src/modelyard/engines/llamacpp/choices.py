"""OpenAI's ``n``, ``logprobs`` (+ ``top_logprobs``) and ``logit_bias`` for the embedded
engine: reading them from a request, and shaping a job's output as OpenAI and vLLM do.

A request with none of them takes the plain path (``Chunk.text``, no logprobs computed).
One asking for logprobs or more than one choice gets its output as OpenAI dicts
(``Chunk.openai``), which serving sends on with its own ``id`` and ``model``:

* streamed, one chunk per token of a choice (its text and its logprob), a chunk with each
  choice's ``finish_reason``, then a last ``Chunk`` without ``openai`` carrying choice 0's
  finish and the usage (prompt tokens once, completion tokens summed over the choices);
* not streamed, one ``Chunk`` holding the whole ``chat.completion`` or ``text_completion``.

``logit_bias`` alone changes sampling only: such a request stays on the plain path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from modelyard.engines.base import Chunk, EngineError, FinishReason, GenerationRequest, Usage
from modelyard.engines.llamacpp.logprobs import MAX_TOP_LOGPROBS, TokenLogprob
from modelyard.engines.llamacpp.sampling import Sampling

BIAS_LIMIT = 100.0
Emit = Callable[[Chunk | BaseException], None]


class InvalidChoiceField(EngineError):
    """A 400 naming the field (``n``, ``logprobs``, ``top_logprobs``, ``logit_bias``)."""

    status = 400
    code = "invalid_request"
    error_type = "invalid_request_error"

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChoiceOptions:
    """``n`` choices; ``top_logprobs``: None for no logprobs, else the alternatives per
    token; ``logit_bias`` as (token id, bias) pairs."""

    n: int = 1
    top_logprobs: int | None = None
    logit_bias: tuple[tuple[int, float], ...] = ()

    @classmethod
    def of(cls, request: GenerationRequest, max_choices: int, n_vocab: int) -> ChoiceOptions:
        """Read and check the request's fields; 400 naming the one that is wrong."""
        fields = request.openai
        if not fields:
            return PLAIN  # a plain request: nothing to read
        n = fields.get("n", 1)
        if n > max_choices:
            raise InvalidChoiceField(
                f"n={n} is more than this model serves at once ({max_choices} sequences).",
                "n",
            )
        chat = request.messages is not None
        top = _chat_logprobs(fields) if chat else _text_logprobs(fields.get("logprobs"))
        return cls(n, top, _logit_bias(fields.get("logit_bias"), n_vocab))

    def biased(self, sampling: Sampling) -> Sampling:
        return replace(sampling, logit_bias=self.logit_bias) if self.logit_bias else sampling

    def choices(self, request: GenerationRequest, prompt_tokens: int, emit: Emit) -> Choices | None:
        """The job's output shaper; None for the plain path."""
        if self.n == 1 and self.top_logprobs is None:
            return None
        chat = request.messages is not None
        return Choices(self, chat=chat, stream=request.stream, emit=emit, prompt=prompt_tokens)


PLAIN = ChoiceOptions()


def _chat_logprobs(fields: Mapping[str, Any]) -> int | None:
    wanted, top = fields.get("logprobs"), fields.get("top_logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise InvalidChoiceField("'logprobs' must be true or false.", "logprobs")
    if top is None:
        return 0 if wanted else None
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
        raise InvalidChoiceField(
            f"'top_logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}.", "top_logprobs"
        )
    if not wanted:
        raise InvalidChoiceField("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs")
    return top


def _text_logprobs(value: object) -> int | None:
    """A completion's ``logprobs``: the number of alternatives per token."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOP_LOGPROBS:
        raise InvalidChoiceField(
            f"'logprobs' of a completion must be an integer from 0 to {MAX_TOP_LOGPROBS}.",
            "logprobs",
        )
    return value


def _logit_bias(value: object, n_vocab: int) -> tuple[tuple[int, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidChoiceField("'logit_bias' must map token ids to biases.", "logit_bias")
    pairs: list[tuple[int, float]] = []
    for key, bias in value.items():
        token = int(key) if isinstance(key, str) and key.isdecimal() else -1
        if not 0 <= token < n_vocab:
            raise InvalidChoiceField(
                f"'logit_bias' names token {key!r}; token ids are from 0 to {n_vocab - 1}.",
                "logit_bias",
            )
        if isinstance(bias, bool) or not isinstance(bias, int | float):
            raise InvalidChoiceField(f"'logit_bias' of token {key} must be a number.", "logit_bias")
        if not -BIAS_LIMIT <= bias <= BIAS_LIMIT:
            raise InvalidChoiceField(
                f"'logit_bias' of token {key} is {bias}; biases are from -100 to 100.",
                "logit_bias",
            )
        pairs.append((token, float(bias)))
    return tuple(pairs)


class Choices:
    """Shapes one job's choices as OpenAI does. Called from the scheduler thread only;
    ``emit`` is the job's (thread-safe)."""

    def __init__(
        self, options: ChoiceOptions, *, chat: bool, stream: bool, emit: Emit, prompt: int
    ) -> None:
        self.n = options.n
        self.top_logprobs = options.top_logprobs
        self._chat, self._stream, self._emit, self._prompt = chat, stream, emit, prompt
        self._created = int(time.time())
        self._texts: list[list[str]] = [[] for _ in range(self.n)]
        self._logprobs: list[list[TokenLogprob]] = [[] for _ in range(self.n)]
        self._offsets = [0] * self.n  # characters of each choice so far (text_offset)
        self._started = [False] * self.n
        self._finishes: list[FinishReason | None] = [None] * self.n
        self._tokens = [0] * self.n

    def token(self, index: int, text: str, logprob: TokenLogprob | None) -> None:
        """Choice ``index`` sampled a token: ``text`` is what it releases now (a stop
        string's possible start is held back), ``logprob`` its logprob when asked."""
        if not self._stream:
            self._texts[index].append(text)
            if logprob is not None:
                self._logprobs[index].append(logprob)
            return
        if not text and logprob is None and self._started[index]:
            return
        logprobs = None if logprob is None else self._logprobs_of(index, [logprob])
        self._send(index, text, logprobs, None)

    def finish(self, index: int, text: str, reason: FinishReason, produced: int) -> None:
        """Choice ``index`` ended with ``text`` held back till now; after the last choice
        the job's end goes out (the whole answer when not streamed)."""
        self._finishes[index], self._tokens[index] = reason, produced
        if self._stream:
            self._send(index, text, None, reason)
        else:
            self._texts[index].append(text)
        if any(finish is None for finish in self._finishes):
            return
        usage = Usage(prompt_tokens=self._prompt, completion_tokens=sum(self._tokens))
        first = self._finishes[0]
        if self._stream:
            self._emit(Chunk(text="", finish_reason=first, usage=usage))
            return
        whole = self.answer(usage)
        self._emit(
            Chunk(text="".join(self._texts[0]), finish_reason=first, usage=usage, openai=whole)
        )

    def answer(self, usage: Usage) -> dict[str, Any]:
        """The whole ``chat.completion`` or ``text_completion`` of a non-streamed job."""
        choices = []
        for index in range(self.n):
            text = "".join(self._texts[index])
            entries = self._logprobs[index]
            logprobs = None if self.top_logprobs is None else self._logprobs_of(index, entries)
            choice: dict[str, Any] = {"index": index}
            if self._chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            choice.update(logprobs=logprobs, finish_reason=self._finishes[index])
            choices.append(choice)
        return {
            "id": "",
            "object": "chat.completion" if self._chat else "text_completion",
            "created": self._created,
            "model": "",
            "choices": choices,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }

    def _send(
        self, index: int, text: str, logprobs: dict[str, Any] | None, finish: FinishReason | None
    ) -> None:
        choice: dict[str, Any] = {"index": index}
        if self._chat:
            delta: dict[str, Any] = {} if self._started[index] else {"role": "assistant"}
            if text or not self._started[index]:
                delta["content"] = text
            choice["delta"] = delta
        else:
            choice["text"] = text
        choice.update(logprobs=logprobs, finish_reason=finish)
        self._started[index] = True
        chunk = {
            "id": "",
            "object": "chat.completion.chunk" if self._chat else "text_completion",
            "created": self._created,
            "model": "",
            "choices": [choice],
        }
        self._emit(Chunk(text=text if index == 0 else "", openai=chunk))

    def _logprobs_of(self, index: int, entries: list[TokenLogprob]) -> dict[str, Any]:
        if self._chat:
            return {"content": [_chat_entry(entry) for entry in entries]}
        tokens = [_text(entry.piece) for entry in entries]
        offsets = []
        for token in tokens:
            offsets.append(self._offsets[index])
            self._offsets[index] += len(token)
        return {
            "tokens": tokens,
            "token_logprobs": [entry.logprob for entry in entries],
            "top_logprobs": [{_text(p): lp for p, lp in entry.top} for entry in entries],
            "text_offset": offsets,
        }


def _chat_entry(entry: TokenLogprob) -> dict[str, Any]:
    return {
        "token": _text(entry.piece),
        "logprob": entry.logprob,
        "bytes": list(entry.piece),
        "top_logprobs": [
            {"token": _text(piece), "logprob": logprob, "bytes": list(piece)}
            for piece, logprob in entry.top
        ],
    }


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")
