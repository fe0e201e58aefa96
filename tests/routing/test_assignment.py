"""Traffic assignment under a policy: sticky users, shares that match the weights, the
names that bypass the policy, fallbacks and shadows in the plan, and policy validation."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from scipy.stats import binom, chisquare

from modelyard.registry import Registry
from modelyard.routing import RoutingTable
from modelyard.routing.protocol import TrafficPolicy
from modelyard.routing.table import assign, bucket
from tests.conftest import register_scripted

USERS = [f"user-{i}" for i in range(3000)]
MIN_P = 0.001


@pytest.fixture
def versions(registry: Registry) -> Registry:
    """``chat`` 1 (production), 2 (staging) and 3 (exp); ``backup`` 1 (production)."""
    register_scripted(registry, "chat")
    register_scripted(registry, "chat", alias="staging")
    register_scripted(registry, "chat", alias="exp")
    register_scripted(registry, "backup")
    return registry


@pytest.fixture
def seeded() -> Iterator[None]:
    """Requests without a user draw from ``random``: seed it (and put it back after)."""
    state = random.getstate()
    random.seed(20240611)
    yield
    random.setstate(state)


def table(registry: Registry, **policy: Any) -> RoutingTable:
    routing = RoutingTable()
    routing.replace(registry.routing_state(), {"chat": TrafficPolicy.model_validate(policy)}, 1)
    return routing


def canary(weight: float, salt: str = "s1") -> dict[str, Any]:
    return {"salt": salt, "candidates": [{"name": "canary", "version": 2, "weight": weight}]}


def variants_of(routing: RoutingTable, users: list[str]) -> dict[str, str | None]:
    return {user: routing.plan("chat", user).primary.variant for user in users}


# -- sticky users ---------------------------------------------------------------------------


def test_a_user_keeps_a_variant_and_the_canary_only_grows(versions: Registry) -> None:
    previous: set[str] = set()
    for weight in (10, 25, 50, 100):
        routing = table(versions, **canary(weight))
        first = variants_of(routing, USERS)
        for _ in range(3):
            assert variants_of(routing, USERS) == first, f"weight {weight}: not sticky"
        on_canary = {user for user, variant in first.items() if variant == "canary"}
        assert set(first.values()) <= {"canary", "stable"}
        # Users move from stable to the canary as it grows, never back.
        assert previous <= on_canary, f"{len(previous - on_canary)} users left the canary"
        # The share is roughly the weight (3 standard deviations of a binomial).
        share = len(on_canary) / len(USERS)
        assert abs(share - weight / 100) <= 3 * (0.25 / len(USERS)) ** 0.5 + 1e-9
        previous = on_canary
    assert previous == set(USERS)


def test_the_variant_names_the_version_that_serves(versions: Registry) -> None:
    routing = table(versions, **canary(50))
    for user in USERS[:200]:
        primary = routing.plan("chat", user).primary
        assert primary.public_name == "chat"
        expected = 2 if primary.variant == "canary" else 1
        assert primary.version.number == expected, (user, primary.variant)
        assert primary.name == f"chat@{expected}"


def test_a_new_salt_reassigns_users(versions: Registry) -> None:
    before = variants_of(table(versions, **canary(50, salt="s1")), USERS)
    after = variants_of(table(versions, **canary(50, salt="s2")), USERS)
    moved = sum(before[user] != after[user] for user in USERS) / len(USERS)
    # Independent halves: about half the users change variant.
    assert 0.4 < moved < 0.6, moved
    assert bucket("s1", "user-1") != bucket("s2", "user-1")


def test_bucket_and_assign() -> None:
    places = [bucket("salt", user) for user in USERS]
    assert all(0 <= p < 1 for p in places)
    assert places == [bucket("salt", user) for user in USERS]
    assert len(set(places)) == len(USERS)
    policy = TrafficPolicy.model_validate(
        {
            "candidates": [
                {"name": "a", "version": 2, "weight": 10},
                {"name": "b", "version": 3, "weight": 30},
            ]
        }
    )
    assert assign(policy, 0.0) == ("a", 2)
    assert assign(policy, 0.0999) == ("a", 2)
    assert assign(policy, 0.1) == ("b", 3)
    assert assign(policy, 0.3999) == ("b", 3)
    assert assign(policy, 0.4) == ("stable", None)
    assert assign(policy, 0.9999) == ("stable", None)


# -- shares match the weights ---------------------------------------------------------------


def _check_shares(observed: Counter[str | None], weights: dict[str, float], n: int) -> None:
    assert set(observed) == set(weights)
    names = sorted(weights)
    result = chisquare(
        [observed[name] for name in names], [n * weights[name] / 100 for name in names]
    )
    assert result.pvalue > MIN_P, (observed, result)


TWO_WAY = ({"candidates": [{"version": 2, "weight": 20}]}, {"candidate": 20, "stable": 80})
THREE_WAY = (
    {
        "candidates": [
            {"name": "small", "version": 2, "weight": 10},
            {"name": "large", "version": 3, "weight": 30},
        ]
    },
    {"small": 10, "large": 30, "stable": 60},
)


@pytest.mark.parametrize(("policy", "weights"), [TWO_WAY, THREE_WAY], ids=["2-way", "3-way"])
def test_shares_of_distinct_users_match_the_weights(
    versions: Registry, policy: dict[str, Any], weights: dict[str, float]
) -> None:
    routing = table(versions, salt="shares", **policy)
    n = 20_000
    observed = Counter(routing.plan("chat", f"u{i}").primary.variant for i in range(n))
    _check_shares(observed, weights, n)


@pytest.mark.parametrize(("policy", "weights"), [TWO_WAY, THREE_WAY], ids=["2-way", "3-way"])
@pytest.mark.usefixtures("seeded")
def test_shares_of_anonymous_requests_match_the_weights(
    versions: Registry, policy: dict[str, Any], weights: dict[str, float]
) -> None:
    routing = table(versions, **policy)
    n = 20_000
    observed = Counter(routing.plan("chat", None).primary.variant for _ in range(n))
    _check_shares(observed, weights, n)
    # Without a user nothing is sticky: the same (absent) user meets several variants.
    assert len({routing.plan("chat").primary.variant for _ in range(100)}) > 1


# -- what bypasses the policy, fallbacks and shadows -----------------------------------------


def test_aliases_and_pinned_versions_bypass_the_policy(versions: Registry) -> None:
    routing = table(
        versions,
        candidates=[{"version": 3, "weight": 100}],
        shadows=[{"version": 2, "share": 100}],
        fallbacks=[{"model": "backup"}],
        timeout_s=2,
    )
    assert routing.plan("chat", "anyone").primary.version.number == 3
    for name, number in [("chat:staging", 2), ("chat@1", 1), ("chat@2", 2), ("chat:exp", 3)]:
        plan = routing.plan(name, "anyone")
        assert plan.primary.version.number == number, name
        assert plan.primary.variant is None
        assert plan.fallbacks == ()
        assert plan.shadows == ()
        assert plan.breaker is None
        assert plan.timeout_s is None


def test_fallbacks_to_unknown_models_are_skipped(versions: Registry) -> None:
    routing = table(
        versions,
        fallbacks=[
            {"model": "ghost"},
            {"model": "backup", "timeout_s": 3},
            {"model": "backup@7"},
            {"model": "chat:nowhere"},
            {"model": "chat@1"},
        ],
        timeout_s=1.5,
        breaker={"failures": 3, "cooldown_s": 10},
    )
    plan = routing.plan("chat", "u")
    assert [(f.target.name, f.timeout_s) for f in plan.fallbacks] == [
        ("backup@1", 3),
        ("chat@1", None),
    ]
    assert plan.timeout_s == 1.5
    assert plan.breaker is not None
    assert (plan.breaker.failures, plan.breaker.cooldown_s) == (3, 10)


def test_without_fallbacks_there_is_no_timeout_nor_breaker(versions: Registry) -> None:
    plan = table(versions, timeout_s=1.5, **canary(10)).plan("chat", "u")
    assert plan.timeout_s is None
    assert plan.breaker is None
    assert plan.fallbacks == ()


@pytest.mark.usefixtures("seeded")
def test_a_full_shadow_share_mirrors_every_request(versions: Registry) -> None:
    routing = table(versions, shadows=[{"version": 3, "share": 100}])
    for i in range(500):
        plan = routing.plan("chat", f"u{i}" if i % 2 else None)
        assert [(s.name, s.variant) for s in plan.shadows] == [("chat@3", "shadow")]
        assert plan.primary.version.number == 1


@pytest.mark.usefixtures("seeded")
def test_a_partial_shadow_share_mirrors_that_share(versions: Registry) -> None:
    routing = table(versions, shadows=[{"version": 2, "share": 30}])
    n = 5000
    mirrored = sum(bool(routing.plan("chat", f"u{i}").shadows) for i in range(n))
    low, high = binom.ppf(MIN_P / 2, n, 0.3), binom.ppf(1 - MIN_P / 2, n, 0.3)
    assert low <= mirrored <= high, (low, mirrored, high)


def test_a_shadow_of_a_missing_version_is_skipped(versions: Registry) -> None:
    routing = table(versions, shadows=[{"version": 9, "share": 100}, {"version": 2, "share": 100}])
    assert [s.name for s in routing.plan("chat").shadows] == ["chat@2"]


# -- policy validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {
                "candidates": [
                    {"name": "a", "version": 2, "weight": 60},
                    {"name": "b", "version": 3, "weight": 50},
                ]
            },
            "add up to 110%, more than 100%",
        ),
        ({"candidates": [{"version": 2, "weight": 101}]}, "less than or equal to 100"),
        ({"candidates": [{"version": 2, "weight": -1}]}, "greater than or equal to 0"),
        (
            {"candidates": [{"name": "a", "version": 2, "weight": 1}] * 2},
            "candidate names must be distinct",
        ),
        ({"candidates": [{"name": "shadow", "version": 2, "weight": 1}]}, "reserved"),
        ({"candidates": [{"name": "fallback", "version": 2, "weight": 1}]}, "reserved"),
        ({"stable_variant": "shadow"}, "reserved"),
        (
            {"candidates": [{"name": "stable", "version": 2, "weight": 1}]},
            "'stable' names both the stable variant and a candidate",
        ),
        (
            {"stable_variant": "blue", "candidates": [{"name": "blue", "version": 2, "weight": 1}]},
            "'blue' names both",
        ),
        ({"candidates": [{"name": "Bad Name", "version": 2, "weight": 1}]}, "pattern"),
        ({"shadows": [{"version": 2, "share": 0}]}, "greater than 0"),
        ({"surprise": True}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_policies_are_refused(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrafficPolicy.model_validate(policy)


def test_weights_of_exactly_100_are_valid() -> None:
    policy = TrafficPolicy.model_validate(
        {
            "candidates": [
                {"name": "a", "version": 2, "weight": 33.3},
                {"name": "b", "version": 3, "weight": 66.7},
            ]
        }
    )
    assert sum(c.weight for c in policy.candidates) == pytest.approx(100)


# -- the sticky header ----------------------------------------------------------------------


def test_the_sticky_header_keeps_a_user_on_one_variant_when_the_body_names_none(
    versions: Registry,
) -> None:
    routing = table(versions, **canary(50))
    header = TrafficPolicy.model_validate(canary(50)).sticky_header
    for user in USERS[:200]:
        by_header = routing.plan("chat", None, {header: user})
        assert by_header.user == user
        assert by_header.primary.variant == routing.plan("chat", user).primary.variant


def test_the_body_user_wins_over_the_sticky_header(versions: Registry) -> None:
    routing = table(versions, **canary(50))
    header = TrafficPolicy.model_validate(canary(50)).sticky_header
    plan = routing.plan("chat", "from-body", {header: "from-header"})
    assert plan.user == "from-body"


def test_a_route_without_a_policy_keeps_the_body_user_and_ignores_headers(
    versions: Registry,
) -> None:
    routing = table(versions, **canary(50))
    plan = routing.plan("backup", None, {"x-user": "someone"})
    assert plan.user is None and plan.primary.name == "backup@1"
