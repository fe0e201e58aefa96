"""The response cache of one app: a lookup before a request is dispatched, a store once
its answer is complete. Off for a route until its traffic policy has ``cache``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.engines import Chunk, EngineSpec, GenerationRequest, Usage
from modelyard.engines.base import FinishReason
from modelyard.engines.pool import EnginePool
from modelyard.errors import ModelyardError
from modelyard.registry.protocol import version_name
from modelyard.routing.cache.answer import CachedAnswer
from modelyard.routing.cache.keys import (
    SHARED_SCOPE,
    cacheable,
    deterministic,
    key_of,
    normalised,
    query_of,
)
from modelyard.routing.cache.memory import MemoryAnswers, SemanticAnswers
from modelyard.routing.cache.redis_answers import RedisAnswers
from modelyard.routing.generation import Generation, Launch
from modelyard.routing.protocol import CachePolicy, CacheStats
from modelyard.routing.table import RoutingTable, Target

if TYPE_CHECKING:
    from modelyard.routing.cache.memory import Vector

log = logging.getLogger(__name__)
Embed = Callable[[str, str], Awaitable["Vector"]]  # (embedding model, text) -> unit vector
STORED_FINISHES = frozenset({"stop", "length"})
LONG_REQUEST_CHARS = 32_768  # about 0.15 ms to serialise and hash on the event loop


@dataclass(slots=True)
class Lookup:
    """One request's lookup: where its answer is kept, and the answer when it is a hit."""

    route: str
    version: str
    policy: CachePolicy
    key: str
    bucket: str | None = None  # the semantic cache's neighbourhood
    vector: Vector | None = None  # the semantic query's embedding
    answer: CachedAnswer | None = None
    similarity: float | None = None

    @property
    def result(self) -> str:
        return "hit" if self.answer is not None else "miss"


@dataclass(slots=True)
class _Counts:
    hits: int = 0
    misses: int = 0
    bypassed: int = 0


def embedder(table: RoutingTable, engines: EnginePool) -> Embed:
    """Embeds with a model of the app, where its engine runs (never on the event loop)."""

    async def embed(model: str, text: str) -> Vector:
        import numpy as np  # only a semantic cache embeds (issue 8)

        target = table.resolve(model)
        engine = await engines.get(target.spec)
        vector = np.asarray((await engine.embed([text])).vectors[0], dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    return embed


class ResponseCache:
    def __init__(self, embed: Embed, redis: RedisAnswers) -> None:
        self._embed = embed
        self._redis = redis
        self._exact: dict[tuple[str, str], MemoryAnswers] = {}
        self._semantic: dict[tuple[str, str], SemanticAnswers] = {}
        self._counts: dict[str, _Counts] = {}

    @property
    def redis(self) -> RedisAnswers:
        return self._redis

    async def lookup(
        self, policy: CachePolicy, target: Target, request: GenerationRequest, key_id: str
    ) -> Lookup | None:
        """The request's lookup (a hit or a miss); None when the cache may not answer it
        (not deterministic, or asking for more than an answer's text)."""
        route = target.model
        counts = self._counts.setdefault(route, _Counts())
        parameters = target.version.parameters
        if not cacheable(request) or not (
            policy.nondeterministic or deterministic(request, parameters)
        ):
            counts.bypassed += 1
            return None
        scope = SHARED_SCOPE if policy.shared else key_id
        key = await _off_loop_if_long(request, key_of, scope, target.name, normalised(request))
        lookup = Lookup(route, target.name, policy, key)
        if policy.backend == "redis":
            lookup.answer = await self._redis.get(
                route, lookup.version, lookup.key, policy.lookup_timeout_s
            )
        else:
            lookup.answer = self._exact_of(lookup).get(lookup.key)
        if lookup.answer is None and policy.mode == "semantic":
            await self._nearest(lookup, request, scope)
        if lookup.answer is not None:
            counts.hits += 1
        else:
            counts.misses += 1
        return lookup

    async def _nearest(self, lookup: Lookup, request: GenerationRequest, scope: str) -> None:
        policy = lookup.policy
        without_query = normalised(request, without_query=True)
        lookup.bucket = await _off_loop_if_long(
            request, key_of, scope, lookup.version, without_query
        )
        try:
            async with asyncio.timeout(policy.lookup_timeout_s):
                lookup.vector = await self._embed(policy.embedding_model, query_of(request))
        except TimeoutError:
            log.info("response cache: no embedding within %ss, a miss", policy.lookup_timeout_s)
            return
        except ModelyardError as error:
            log.warning("response cache: cannot embed with %s: %s", policy.embedding_model, error)
            return
        nearest = self._semantic_of(lookup).nearest(lookup.bucket, lookup.vector)
        if nearest is not None and nearest[1] >= policy.threshold:
            lookup.answer, lookup.similarity = nearest

    def remember(self, lookup: Lookup, answer: CachedAnswer) -> None:
        """Keep a miss's answer (a complete one of plain text, within the size bound)."""
        policy = lookup.policy
        if (
            answer.finish_reason not in STORED_FINISHES
            or len(answer.text) > policy.max_answer_chars
        ):
            return
        if policy.backend == "redis":
            self._redis.put(
                lookup.route, lookup.version, lookup.key, answer, policy.ttl_s, policy.max_entries
            )
        else:
            self._exact_of(lookup).put(lookup.key, answer, policy.ttl_s, policy.max_entries)
        if lookup.bucket is not None and lookup.vector is not None:
            semantic = self._semantic_of(lookup)
            semantic.put(lookup.bucket, lookup.vector, answer, policy.ttl_s, policy.max_entries)

    def retain(self, specs: Iterable[EngineSpec]) -> None:
        """Forget what versions no longer served (the routing table's ``aliased_specs``)
        kept in memory: a new version starts with an empty cache."""
        served = {(spec.model, version_name(spec.model, spec.version)) for spec in specs}
        for stores in (self._exact, self._semantic):
            for pair in [pair for pair in stores if pair not in served]:
                del stores[pair]

    def stats(self, route: str) -> CacheStats:
        counts = self._counts.get(route, _Counts())
        looked = counts.hits + counts.misses
        entries = sum(len(s) for (r, _), s in self._exact.items() if r == route)
        entries += sum(len(s) for (r, _), s in self._semantic.items() if r == route)
        return CacheStats(
            hits=counts.hits,
            misses=counts.misses,
            bypassed=counts.bypassed,
            hit_rate=counts.hits / looked if looked else None,
            entries=entries,
        )

    def _exact_of(self, lookup: Lookup) -> MemoryAnswers:
        pair = (lookup.route, lookup.version)
        found = self._exact.get(pair)
        if found is None:
            found = self._exact[pair] = MemoryAnswers(lookup.policy.max_entries)
        return found

    def _semantic_of(self, lookup: Lookup) -> SemanticAnswers:
        pair = (lookup.route, lookup.version)
        found = self._semantic.get(pair)
        if found is None:
            found = self._semantic[pair] = SemanticAnswers()
        return found

    async def aclose(self) -> None:
        await self._redis.aclose()


async def _off_loop_if_long(
    request: GenerationRequest, key: Callable[[str, str, dict[str, Any]], str], *args: Any
) -> str:
    """``key(*args)``, on a worker thread for a long request (serialising and hashing
    megabytes takes milliseconds), on the event loop for the usual short one."""
    size = len(request.prompt or "") + sum(len(m.content) for m in request.messages or ())
    if size > LONG_REQUEST_CHARS:
        return await asyncio.to_thread(key, *args)
    return key(*args)


def replayed(answer: CachedAnswer, target: Target, launch: Launch) -> Generation:
    """A hit as a generation of one chunk: the stored text (restored with this request's
    own values where the route redacts), its finish and its usage."""
    finish: FinishReason = "length" if answer.finish_reason == "length" else "stop"
    usage = Usage(answer.prompt_tokens, answer.completion_tokens)
    return Generation(
        id=f"{launch.prefix}-{random.getrandbits(96):024x}",  # a name, not a secret
        created=int(time.time()),
        target=target,
        first=Chunk(answer.text, finish, usage),
        rest=_nothing(),
        first_token_at=time.perf_counter(),
        restorer=launch.restorer,
    )


async def _nothing() -> AsyncGenerator[Chunk, None]:
    """The rest of a replayed generation: nothing after its one chunk."""
    nothing: tuple[Chunk, ...] = ()
    for chunk in nothing:
        yield chunk
