"""The guard on the request path: route permission, rate limits, budgets, request limits,
PII and injection scanning. Reads only memory (and Redis when configured)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelyard.errors import ModelyardError
from modelyard.guard.injection import InjectionScanner
from modelyard.guard.keyring import Principal
from modelyard.guard.ledger import BudgetLedger, Spend
from modelyard.guard.pii import PiiDetector, Redaction, StreamRestorer
from modelyard.guard.policies import PolicyBook
from modelyard.guard.protocol import KeyLimits, RoutePolicy
from modelyard.guard.ratelimit import Decision, Limits, RateLimiter, openai_headers

# Texts longer than this are scanned on a worker thread instead of the event loop.
INLINE_SCAN_CHARS = 1024


class Refusal(ModelyardError):
    """The guard refuses a request; serving turns it into an OpenAI-shaped error."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            message,
            status=status,
            code=code,
            param=param,
            error_type=error_type,
            headers=headers,
        )
        # What the scan found before refusing, for the request log (types, never values).
        self.pii: dict[str, int] = {}
        self.injection: list[str] = []


@dataclass(frozen=True)
class RequestShape:
    """What the guard checks of a request before it reaches a model."""

    max_tokens: int | None
    messages: int


@dataclass
class Admission:
    """A request the guard let through, and what it must do when the request ends."""

    principal: Principal
    route: str
    policy: RoutePolicy
    texts: list[str]
    scopes: tuple[tuple[str, Limits], ...]
    headers: dict[str, str]
    redaction: Redaction | None = None
    pii: dict[str, int] = field(default_factory=dict)
    injection: list[str] = field(default_factory=list)

    def stream_restorer(self) -> StreamRestorer | None:
        """Restores placeholders in the response, when the route redacts and restores."""
        if self.redaction is not None and self.policy.pii_restore and self.redaction.findings:
            return self.redaction.stream_restorer()
        return None


@dataclass(frozen=True)
class RequestLimits:
    max_tokens_cap: int
    max_messages: int


class Gate:
    def __init__(
        self,
        *,
        policies: PolicyBook,
        limiter: RateLimiter,
        ledger: BudgetLedger,
        detector: PiiDetector,
        scanner: InjectionScanner,
        limits: RequestLimits,
    ) -> None:
        self.policies = policies
        self.limiter = limiter
        self.ledger = ledger
        self._detector = detector
        self._scanner = scanner
        self._limits = limits
        self._detectors: dict[frozenset[str], PiiDetector] = {}
        self._settling: set[asyncio.Task[None]] = set()

    def limiter_fallbacks(self) -> dict[str, int]:
        return self.limiter.fallback_counts()

    def check_shape(self, shape: RequestShape) -> None:
        if shape.max_tokens is not None and shape.max_tokens > self._limits.max_tokens_cap:
            raise Refusal(
                400,
                f"max_tokens is {shape.max_tokens}, above this server's cap of "
                f"{self._limits.max_tokens_cap}.",
                "max_tokens_too_large",
                param="max_tokens",
            )
        if shape.messages > self._limits.max_messages:
            raise Refusal(
                400,
                f"The request has {shape.messages} messages; at most "
                f"{self._limits.max_messages} are allowed.",
                "too_many_messages",
                param="messages",
            )

    async def admit(self, principal: Principal, route: str, texts: Sequence[str]) -> Admission:
        if not principal.may_call(route):
            raise Refusal(
                403,
                f"This API key may not call '{route}' (allowed: "
                f"{', '.join(principal.allowed_routes) or 'nothing'}).",
                "model_not_allowed",
                param="model",
            )
        policy = self.policies.for_route(route)
        scopes = (
            (f"key:{principal.key_id}", _key_limits(principal.limits)),
            (f"route:{route}", Limits(policy.requests_per_minute, policy.tokens_per_minute)),
        )
        await self._check_budget(principal)
        decision = await self.limiter.admit(scopes)
        headers = openai_headers(decision)
        if not decision.allowed:
            raise _rate_refusal(decision, headers)
        admission = Admission(
            principal=principal,
            route=route,
            policy=policy,
            texts=list(texts),
            scopes=scopes,
            headers=headers,
        )
        if sum(len(t) for t in texts) > INLINE_SCAN_CHARS:
            await asyncio.to_thread(self._scan, admission)
        else:
            self._scan(admission)
        return admission

    async def settle(self, admission: Admission, tokens: int, cost: float) -> None:
        """Charge what a finished request used to its rate limits and budgets."""
        if tokens:
            await self.limiter.charge_tokens(admission.scopes, tokens)
        if tokens or cost:
            await self.ledger.charge(admission.principal.key_id, tokens, cost, datetime.now(UTC))

    def settle_soon(self, admission: Admission, tokens: int, cost: float) -> None:
        """``settle`` without waiting (from ``finally`` blocks of cancelled streams)."""
        task = asyncio.get_running_loop().create_task(self.settle(admission, tokens, cost))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def drain(self) -> None:
        """Wait for pending charges (shutdown, tests)."""
        while pending := [task for task in self._settling if not task.done()]:
            await asyncio.gather(*pending)

    async def _check_budget(self, principal: Principal) -> None:
        limits = principal.limits
        budgets = (
            limits.daily_tokens,
            limits.monthly_tokens,
            limits.daily_cost,
            limits.monthly_cost,
        )
        if all(b is None for b in budgets):
            return
        today, month = await self.ledger.spent(principal.key_id, datetime.now(UTC))
        for spent, period in ((today, "daily"), (month, "monthly")):
            _refuse_over_budget(spent, limits, period)

    def _scan(self, admission: Admission) -> None:
        policy = admission.policy
        if policy.injection != "off":
            rules = sorted(
                {flag.rule for text in admission.texts for flag in self._scanner.scan(text)}
            )
            admission.injection = rules
            if rules and policy.injection == "block":
                refusal = Refusal(
                    400,
                    "The request was refused: it matches prompt-injection patterns "
                    f"({', '.join(rules)}).",
                    "prompt_injection_detected",
                )
                refusal.injection = rules
                raise refusal
        if policy.pii == "off":
            return
        detector = self._detector_for(policy)
        if policy.pii == "redact":
            redaction = Redaction(detector)
            admission.texts = [redaction.redact(text) for text in admission.texts]
            admission.redaction = redaction
            admission.pii = redaction.counts()
            return
        counts: dict[str, int] = {}
        for text in admission.texts:
            for finding in detector.detect(text):
                counts[finding.entity] = counts.get(finding.entity, 0) + 1
        admission.pii = counts
        if counts and policy.pii == "block":
            refusal = Refusal(
                400,
                "The request was refused: it contains personal data "
                f"({', '.join(sorted(counts))}); remove it or ask an admin for a route "
                "that redacts.",
                "pii_detected",
            )
            refusal.pii, refusal.injection = counts, admission.injection
            raise refusal

    def _detector_for(self, policy: RoutePolicy) -> PiiDetector:
        if not policy.pii_entities:
            return self._detector
        entities = frozenset(policy.pii_entities)
        detector = self._detectors.get(entities)
        if detector is None:
            regions = self._detector.phone_regions
            detector = self._detectors[entities] = PiiDetector(entities, regions)
        return detector


def _key_limits(limits: KeyLimits) -> Limits:
    return Limits(limits.requests_per_minute, limits.tokens_per_minute)


def _rate_refusal(decision: Decision, headers: dict[str, str]) -> Refusal:
    retry = max(1, round(decision.retry_after_s or 1))
    if decision.fallback == "deny":
        return Refusal(
            503,
            "Rate limiting is unavailable (its Redis is unreachable) and this server denies "
            "requests until it is back.",
            "rate_limiter_unavailable",
            error_type="server_error",
            headers={"retry-after": str(retry)},
        )
    scope = (decision.refused_by or "").partition(":")[0]
    who = "this route" if scope == "route" else "this API key"
    return Refusal(
        429,
        f"Rate limit reached for {who}. Try again in {retry} s.",
        "rate_limit_exceeded",
        headers={**headers, "retry-after": str(retry)},
    )


def _refuse_over_budget(spent: Spend, limits: KeyLimits, period: str) -> None:
    token_budget = limits.daily_tokens if period == "daily" else limits.monthly_tokens
    cost_budget = limits.daily_cost if period == "daily" else limits.monthly_cost
    if token_budget is not None and spent.tokens >= token_budget:
        what = f"{period} token budget ({spent.tokens} of {token_budget} tokens used)"
    elif cost_budget is not None and spent.cost >= cost_budget:
        what = f"{period} cost budget ({spent.cost:.4f} of {cost_budget:.4f} used)"
    else:
        return
    raise Refusal(
        429,
        f"You exceeded this API key's {what}. It resets at the start of the next "
        f"{'day' if period == 'daily' else 'month'} (UTC).",
        "insufficient_quota",
        error_type="insufficient_quota",
    )
