"""A synthetic request log with planted rows of each kind curation must find, written
through the request-log writer (content sealed with the home's content keys) and feedback
through ``add_feedback``, as the server writes them."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker

from modelyard.guard.crypto import ContentCipher
from modelyard.observe.feedback import add_feedback
from modelyard.observe.protocol import FeedbackIn
from modelyard.observe.requestlog import RequestLogWriter, RequestRecord
from modelyard.store import Store

KINDS = (
    "normal",
    "exact",
    "near",
    "pii",
    "failed",
    "truncated",
    "outlier",
    "refused",
    "shadow",
    "empty",
)
COUNTS = {
    "normal": 900,
    "exact": 40,
    "near": 40,
    "pii": 40,
    "failed": 30,
    "truncated": 30,
    "outlier": 20,
    "refused": 10,
    "shadow": 10,
    "empty": 10,
}
LABELS = ("billing", "cards", "travel")


@dataclass
class Planted:
    """Request ids by planted kind, and what each planted duplicate copies."""

    ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    copies: dict[str, str] = field(default_factory=dict)  # duplicate id -> original id
    prompts: dict[str, str] = field(default_factory=dict)

    def kind_of(self, request_id: str) -> str:
        return next(kind for kind, ids in self.ids.items() if request_id in ids)


def prompt(fake: Faker) -> str:
    """An English question of 15 to 30 words, unlike any other the generator makes."""
    return (
        f"Could you help me understand how {fake.bs()} works for a {fake.job().lower()} "
        f"at {fake.company()}, and whether it is worth it when we also want to "
        f"{fake.catch_phrase().lower()}?"
    )


def answer(fake: Faker, rng: random.Random) -> str:
    return " ".join(fake.sentence(nb_words=12) for _ in range(rng.randint(2, 4)))


def near_copy(text: str, rng: random.Random) -> str:
    """The text with one word dropped and one typo: a near duplicate, not an exact one."""
    words = text.split()
    del words[rng.randrange(1, len(words) - 1)]
    i = rng.randrange(len(words))
    if len(words[i]) > 3:
        words[i] = words[i][:-2] + words[i][-1] + words[i][-2]
    return " ".join(words)


class LogBuilder:
    def __init__(self, seed: int = 7) -> None:
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.records: list[RequestRecord] = []
        self.labels: dict[str, str] = {}
        self.planted = Planted()
        self.start = datetime.now(UTC) - timedelta(hours=6)

    def record(self, kind: str, question: str, reply: str | None, **fields: Any) -> str:
        request_id = f"req-{len(self.records):05d}"
        latency = self.rng.lognormvariate(6.5, 0.25)
        values: dict[str, Any] = {
            "id": request_id,
            "at": self.start + timedelta(seconds=len(self.records)),
            "key_id": "k",
            "endpoint": "chat.completions",
            "route": "support",
            "version": "support@1",
            "status": 200,
            "error_code": None,
            "latency_ms": latency,
            "prompt_tokens": self.tokens(question),
            "completion_tokens": self.tokens(reply or ""),
            "finish_reason": "stop",
            "content": {
                "messages": [{"role": "user", "content": question}],
                "response": reply,
            },
            **fields,
        }
        self.records.append(RequestRecord(**values))
        self.planted.ids[kind].append(request_id)
        self.planted.prompts[request_id] = question
        self.labels[request_id] = self.rng.choice(LABELS)
        return request_id

    def tokens(self, text: str) -> int:
        """About as many tokens as a BPE tokenizer makes of English prose."""
        return round(len(text.split()) * self.rng.uniform(1.2, 1.5))

    def normal(self) -> str:
        return self.record("normal", prompt(self.fake), answer(self.fake, self.rng))

    def build(self) -> LogBuilder:
        originals = [self.normal() for _ in range(COUNTS["normal"])]
        sources = self.rng.sample(originals, COUNTS["exact"] + COUNTS["near"])
        for original in sources[: COUNTS["exact"]]:
            text = self.planted.prompts[original]
            copy = self.record("exact", f"  {text.upper()} ", answer(self.fake, self.rng))
            self.planted.copies[copy] = original
        for original in sources[COUNTS["exact"] :]:
            text = near_copy(self.planted.prompts[original], self.rng)
            copy = self.record("near", text, answer(self.fake, self.rng))
            self.planted.copies[copy] = original
        self._unclean()
        self._pii_and_outliers()
        order = list(range(len(self.records)))
        self.rng.shuffle(order)  # planted rows anywhere in time, not after their originals
        for position, index in enumerate(order):
            record = self.records[index]
            self.records[index] = record.model_copy(
                update={"at": self.start + timedelta(seconds=position)}
            )
        return self

    def _unclean(self) -> None:
        for _ in range(COUNTS["failed"]):
            status = self.rng.choice((500, 502, 429))
            self.record("failed", prompt(self.fake), None, status=status, error_code="engine_error")
        for _ in range(COUNTS["truncated"]):
            self.record(
                "truncated", prompt(self.fake), answer(self.fake, self.rng), finish_reason="length"
            )
        for _ in range(COUNTS["refused"]):
            reply = "I'm sorry, but I can't help with that request."
            self.record("refused", prompt(self.fake), reply)
        for _ in range(COUNTS["shadow"]):
            self.record("shadow", prompt(self.fake), answer(self.fake, self.rng), variant="shadow")
        for _ in range(COUNTS["empty"]):
            self.record("empty", prompt(self.fake), "")

    def _pii_and_outliers(self) -> None:
        for i in range(COUNTS["pii"]):
            secret = (self.fake.email(), "4111 1111 1111 1111", "+1 415 555 0132")[i % 3]
            text = f"{prompt(self.fake)} You can reach me at {secret}."
            self.record("pii", text, answer(self.fake, self.rng))
        for _ in range(COUNTS["outlier"]):
            reply = " ".join(answer(self.fake, self.rng) for _ in range(40))
            self.record(
                "outlier",
                prompt(self.fake),
                reply,
                latency_ms=self.rng.uniform(60_000, 120_000),
                completion_tokens=self.tokens(reply),
            )


async def write_log(store: Store, cipher: ContentCipher, builder: LogBuilder) -> None:
    """The records through the request-log writer, and a label feedback on each request."""
    writer = RequestLogWriter(
        store,
        seal=cipher,
        store_content=True,
        flush_interval_s=0.01,
        batch_rows=200,
        queue_rows=len(builder.records) + 1,
    )
    for record in builder.records:
        writer.submit(record)
    await writer.close()
    for request_id, label in builder.labels.items():
        add_feedback(store, FeedbackIn(request_id=request_id, name="intent", value=label), "k")
