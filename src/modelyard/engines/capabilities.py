"""What an engine kind can do, declared as data: a caller asks instead of trying and catching."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Capabilities:
    """Each field says whether the kind supports it; a kind declares only what is true."""

    chat: bool = False  # generate from messages
    completion: bool = False  # generate from a prompt
    streaming: bool = False  # tokens as they are produced
    embeddings: bool = False
    classification: bool = False
    tools: bool = False  # function calling
    structured_output: bool = False  # a JSON schema constrains the answer
    logprobs: bool = False
    multiple_choices: bool = False  # n > 1
    image_input: bool = False
    audio_input: bool = False
    logit_bias: bool = False
    seed: bool = False  # a request's seed makes sampling reproducible

    def names(self) -> list[str]:
        """The supported ones, in declaration order."""
        return [field.name for field in fields(self) if getattr(self, field.name)]


@dataclass(frozen=True)
class Need:
    """A request field only some engines honour: ``field`` as OpenAI names it (the 400 of
    a request nobody can honour names it), and the capability it needs; None for a field
    beyond the ones modelyard models (an extra field), which a kind must take by name."""

    field: str
    capability: str | None = None


# Chat and completion, streamed: what every generating built-in supports today.
GENERATES = Capabilities(chat=True, completion=True, streaming=True)
EMBEDS = Capabilities(embeddings=True)
