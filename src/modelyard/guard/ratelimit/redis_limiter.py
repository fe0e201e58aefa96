"""The shared rate limiter: buckets in Redis, read and written by one Lua script per request,
so all replicas count together and a request is admitted in every scope or in none."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from modelyard.guard.ratelimit.base import Decision, Limits
from modelyard.guard.ratelimit.buckets import EPSILON, WINDOW_S, Levels, build_decision
from modelyard.guard.ratelimit.redis_link import call_redis, connect

# KEYS: per scope, its request bucket then its token bucket (hashes: level, at in µs).
# ARGV: "admit" or "charge", the tokens to charge, then per scope its rpm and tpm (0: none).
# Time is the server's (TIME), so replicas with skewed clocks agree. A key expires when its
# bucket would be full again, since a missing bucket reads as full.
# Reply: admitted (1/0), the 1-based index of the first refusing scope (0: none), then per
# scope the levels after the call ("" where unlimited).
BUCKETS_SCRIPT = f"""
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window_us = {WINDOW_S * 1_000_000:.0f}
local epsilon = {EPSILON}
local max_ttl_ms = 366 * 24 * 3600 * 1000
local mode, charge = ARGV[1], tonumber(ARGV[2])
local scopes = #KEYS / 2
local limits, levels = {{}}, {{}}

local function level_of(key, limit)
  local stored = redis.call('HMGET', key, 'level', 'at')
  if not stored[1] then return limit end
  local level = tonumber(stored[1]) + math.max(0, now - tonumber(stored[2])) * limit / window_us
  return math.min(limit, level)
end

local function write(key, level, limit)
  redis.call('HSET', key, 'level', string.format('%.17g', level), 'at', string.format('%.0f', now))
  local ttl_ms = math.ceil((limit - level) * window_us / limit / 1000) + 1000
  redis.call('PEXPIRE', key, math.min(ttl_ms, max_ttl_ms))
end

for k = 1, #KEYS do
  limits[k] = tonumber(ARGV[2 + k])
  if limits[k] > 0 then levels[k] = level_of(KEYS[k], limits[k]) else levels[k] = false end
end

local refused = 0
if mode == 'charge' then
  for s = 1, scopes do
    local k = 2 * s
    if levels[k] then levels[k] = levels[k] - charge; write(KEYS[k], levels[k], limits[k]) end
  end
else
  for s = 1, scopes do
    local requests, tokens = levels[2 * s - 1], levels[2 * s]
    if refused == 0 and ((requests and requests < 1 - epsilon) or (tokens and tokens <= 0)) then
      refused = s
    end
  end
  if refused == 0 then
    for s = 1, scopes do
      local k = 2 * s - 1
      if levels[k] then levels[k] = levels[k] - 1; write(KEYS[k], levels[k], limits[k]) end
    end
  end
end

local reply = {{refused == 0 and 1 or 0, refused}}
for k = 1, #KEYS do
  reply[2 + k] = levels[k] and string.format('%.17g', levels[k]) or ''
end
return reply
"""
BUCKETS_SCRIPT_SHA = hashlib.sha1(BUCKETS_SCRIPT.encode()).hexdigest()


class RedisRateLimiter:
    """Token buckets in Redis under ``<prefix>:rl:``. Raises ``RedisUnavailable`` when Redis
    does not answer within about twice ``timeout_s``."""

    def __init__(self, url: str, prefix: str = "modelyard", *, timeout_s: float = 0.25) -> None:
        self._redis = connect(url, timeout_s)
        self._prefix = prefix
        self._timeout_s = timeout_s

    async def admit(self, scopes: Sequence[tuple[str, Limits]]) -> Decision:
        reply = await self._run(scopes, "admit", 0)
        refused = int(reply[1])
        return build_decision(scopes, _levels(reply[2:]), None if refused == 0 else refused - 1)

    async def charge_tokens(self, scopes: Sequence[tuple[str, Limits]], tokens: int) -> None:
        if any(limits.tokens_per_minute is not None for _, limits in scopes):
            await self._run(scopes, "charge", tokens)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def fallback_counts(self) -> dict[str, int]:
        return {}  # no fallback: it raises ``RedisUnavailable``

    def _keys(self, scope: str) -> tuple[str, str]:
        return f"{self._prefix}:rl:{scope}:requests", f"{self._prefix}:rl:{scope}:tokens"

    async def _run(self, scopes: Sequence[tuple[str, Limits]], mode: str, tokens: int) -> list[Any]:
        keys = [key for scope, _ in scopes for key in self._keys(scope)]
        limits = [
            limit or 0
            for _, scope_limits in scopes
            for limit in (scope_limits.requests_per_minute, scope_limits.tokens_per_minute)
        ]
        args: list[str | int] = [mode, tokens, *limits]

        async def evaluate() -> list[Any]:
            from redis.exceptions import NoScriptError  # imported by ``connect`` already

            try:
                reply = await self._redis.evalsha(BUCKETS_SCRIPT_SHA, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed server forgot the script
                await self._redis.script_load(BUCKETS_SCRIPT)
                reply = await self._redis.evalsha(BUCKETS_SCRIPT_SHA, len(keys), *keys, *args)
            return list(reply)

        return await call_redis(evaluate, self._timeout_s)


def _levels(flat: list[Any]) -> list[Levels]:
    values = [None if value == "" else float(value) for value in flat]
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
