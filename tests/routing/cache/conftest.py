"""The guard's Redis fixtures (the shared test Redis, required in CI; private servers)."""

from tests.guard.conftest import private_redis, redis_client, redis_prefix, redis_url

__all__ = ["private_redis", "redis_client", "redis_prefix", "redis_url"]
