"""The guard's objects of one running app, and keeping its memory in step with the store."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.guard.gate import Gate, RequestLimits
from modelyard.guard.injection import InjectionScanner
from modelyard.guard.keyring import KeyRing
from modelyard.guard.keys import KeyService
from modelyard.guard.ledger import BudgetLedger, Spend, open_budget_ledger
from modelyard.guard.pii import PiiDetector
from modelyard.guard.policies import PolicyBook, PolicyService
from modelyard.guard.protocol import RoutePolicy
from modelyard.guard.ratelimit import RateLimiter, open_rate_limiter
from modelyard.guard.sessions import SessionSigner, load_session_secret
from modelyard.guard.usage import spend_since
from modelyard.store import Store

log = logging.getLogger(__name__)


@dataclass
class GuardServices:
    keys: KeyService
    policies: PolicyService
    keyring: KeyRing
    book: PolicyBook
    gate: Gate
    signer: SessionSigner
    cipher: crypto.ContentCipher
    store: Store

    async def reload(self) -> None:
        """Reload keys and policies now (after a change made through this replica)."""
        marker, records = await asyncio.to_thread(self.keys.records)
        self.keyring.replace(marker, records)
        policy_marker, policies = await asyncio.to_thread(self.policies.snapshot)
        self.book.replace(policy_marker, policies)

    async def watch(self, interval_s: float) -> None:
        """Follow changes made by other processes (the CLI, other replicas)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                keys = await asyncio.to_thread(self.keys.marker)
                policies = await asyncio.to_thread(self.policies.marker)
                if keys != self.keyring.marker or policies != self.book.marker:
                    await self.reload()
            except SQLAlchemyError as error:
                log.warning("guard refresh failed, keeping the current keys: %s", error)

    async def seed_budgets(self) -> None:
        """Load this day's and month's spend per key from the request log (startup)."""
        now = datetime.now(UTC)
        day, month = await asyncio.to_thread(spend_since, self.store, now)
        none = Spend(0, 0.0)
        for key_id in set(day) | set(month):
            self.gate.ledger.seed(key_id, day.get(key_id, none), month.get(key_id, none), now)

    async def aclose(self) -> None:
        await self.gate.limiter.aclose()
        await self.gate.ledger.aclose()


def open_guard(settings: Settings, store: Store) -> GuardServices:
    home = settings.ensure_home()
    cipher = crypto.cipher_for(settings)
    session_env = settings.session_secret.get_secret_value() if settings.session_secret else None
    default_policy = RoutePolicy(pii=settings.pii_policy, injection=settings.injection_policy)
    book = PolicyBook(default_policy)
    limiter: RateLimiter = open_rate_limiter(
        settings.rate_limit_backend,
        settings.redis_url,
        fallback=settings.redis_unavailable,
        prefix=settings.redis_prefix,
        timeout_s=settings.redis_timeout_s,
    )
    ledger: BudgetLedger = open_budget_ledger(
        settings.rate_limit_backend,
        settings.redis_url,
        prefix=settings.redis_prefix,
        timeout_s=settings.redis_timeout_s,
    )
    gate = Gate(
        policies=book,
        limiter=limiter,
        ledger=ledger,
        detector=PiiDetector(phone_regions=settings.pii_phone_regions.split(",")),
        scanner=InjectionScanner(),
        limits=RequestLimits(settings.max_tokens_cap, settings.max_messages),
    )
    return GuardServices(
        keys=KeyService(store),
        policies=PolicyService(store),
        keyring=KeyRing(),
        book=book,
        gate=gate,
        signer=SessionSigner(load_session_secret(home, session_env), settings.session_ttl_s),
        cipher=cipher,
        store=store,
    )
