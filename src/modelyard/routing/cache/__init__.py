"""The response cache (docs/cache.md): exact or semantic, in memory or Redis, per route."""

from modelyard.routing.cache.answer import CachedAnswer
from modelyard.routing.cache.redis_answers import RedisAnswers
from modelyard.routing.cache.service import Lookup, ResponseCache, embedder, replayed

__all__ = ["CachedAnswer", "Lookup", "RedisAnswers", "ResponseCache", "embedder", "replayed"]
