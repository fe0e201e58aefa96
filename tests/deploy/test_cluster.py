"""Three ``modelyard serve`` replicas behind HAProxy on PostgreSQL and Redis (deploy/cluster.py),
under mixed traffic with a rollout in progress; the replica holding the release controller's
lease is killed with SIGKILL mid-load and restarted. What it shows, and the figures it
prints (``pytest -s``), are in docs/scaling.md ("A cluster on one machine")."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from deploy.cluster import TOKENS_PER_ANSWER, Cluster, ClusterConfig, wait_until
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from modelyard.store import Store, open_store
from modelyard.store.tables import LeaseRow, RequestLogRow
from tests.conftest import IN_CI, POSTGRES_URL
from tests.deploy.cluster_traffic import Attempt, Traffic, errors_by_kind

REDIS_URL = os.environ.get("MODELYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REFRESH_S = 0.5  # MODELYARD_ROUTING_REFRESH_S: aliases, policies and keys
TICK_S = 0.5  # MODELYARD_RELEASE_TICK_S: the controller's lease lives 3 ticks
FLUSH_S = 0.5  # MODELYARD_LOG_FLUSH_INTERVAL_S: what a crash may lose of the log
SETTINGS = {
    "MODELYARD_ROUTING_REFRESH_S": str(REFRESH_S),
    "MODELYARD_RELEASE_TICK_S": str(TICK_S),
    "MODELYARD_LOG_FLUSH_INTERVAL_S": str(FLUSH_S),
}
INTER_MS, FALL, RISE = 200, 2, 2  # HAProxy's checks of /readyz
CLIENTS = 6
LIMIT_RPM = 12  # the key `limited`
BUDGET_TOKENS = 10 * TOKENS_PER_ANSWER  # the key `budgeted`: ten answers a day
PAUSE_S = 3.0  # each pause step of the rollout
# A reload is a poll every REFRESH_S, then queries; a log batch waits FLUSH_S, then is
# written. On a loaded 2-core machine the queries, the write and a probe's own request take
# well under this (measured: 0.1-0.3 s).
SLACK_S = 1.0
LEASE_TTL_S = 3 * TICK_S
pytestmark = pytest.mark.postgres
KEYS = ("alice", "bob", "carol", "limited", "budgeted")
LEASE = "release-controller"


@pytest.fixture
def services_here() -> None:
    """PostgreSQL, Redis and haproxy: a failure in CI when one is missing, else a skip."""
    missing = []
    if shutil.which("haproxy") is None:
        missing.append("haproxy (scripts/setup.sh test installs it)")
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError:
        missing.append(f"PostgreSQL at {POSTGRES_URL}")
    finally:
        engine.dispose()
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError):
        missing.append(f"Redis at {REDIS_URL}")
    finally:
        client.close()
    if missing and IN_CI:
        pytest.fail(f"the cluster test needs, in CI: {', '.join(missing)}")
    if missing:
        pytest.skip(f"the cluster test needs {', '.join(missing)}")


@dataclass
class Timeline:
    """What happened when (monotonic seconds) and what the checks measured."""

    victim: int = -1
    killed_at: float = 0.0
    down_at: float = 0.0
    restarted_at: float = 0.0
    up_at: float = 0.0
    lease_moved_at: float = 0.0
    promoted_at: float = 0.0
    step_at_kill: int = -1
    steps: int = 0
    status: str = ""
    haproxy: dict[str, str] = field(default_factory=dict)  # the backend's counters at the end
    alias_move_s: dict[str, float] = field(default_factory=dict)
    revocation_s: dict[str, float] = field(default_factory=dict)
    new_holder: str = ""
    recovered_rows: float = -1.0  # what the restarted replica replayed from its journal


def test_a_replica_killed_under_load(services_here: None, tmp_path: Path) -> None:
    config = ClusterConfig(
        directory=str(tmp_path / "cluster"),
        database_url=POSTGRES_URL,
        redis_url=REDIS_URL,
        upstream_latency_s=0.06,
        inter_ms=INTER_MS,
        fall=FALL,
        rise=RISE,
        settings=SETTINGS,
    )
    started = time.monotonic()
    with Cluster(config) as cluster:
        store = open_store(cluster.store_url, migrate=False)
        try:
            keys = set_up(cluster)
            traffic = Traffic(cluster.url, keys, model="chat", clients=CLIENTS)
            timeline = Timeline()
            traffic.start()
            try:
                drill(cluster, store, traffic, timeline)
            finally:
                attempts = traffic.stop()
            timeline.haproxy = cluster.stats()["BACKEND"]
            rows = logged_rows(store, attempts)
        finally:
            store.close()
        figures = measure(cluster, attempts, rows, timeline)
    figures["wall_clock_s"] = round(time.monotonic() - started, 1)
    report(figures, tmp_path / "cluster-figures.json")
    check(cluster, attempts, rows, timeline, figures)


# -- the drill ------------------------------------------------------------------------------


def set_up(cluster: Cluster) -> dict[str, str]:
    """Two upstream versions of `chat` (the rollout's) and of `echo` (the alias move's), and
    the keys; every replica knows them before the traffic starts."""
    cluster.add_upstream_version("chat", "stable-model", alias="production")
    cluster.add_upstream_version("chat", "candidate-model")
    cluster.add_upstream_version("echo", "echo-1", alias="production")
    cluster.add_upstream_version("echo", "echo-2")
    limits = {
        "limited": {"requests_per_minute": LIMIT_RPM},
        "budgeted": {"daily_tokens": BUDGET_TOKENS},
    }
    keys = {name: create_key(cluster, name, limits.get(name, {}))["secret"] for name in KEYS}
    for index in range(cluster.config.replicas):
        for secret in keys.values():
            wait_until(partial(knows, cluster, index, secret), 10, f"replica {index + 1}: keys")
        serves_echo = partial(serves, cluster, index, "echo", "echo@1")
        wait_until(serves_echo, 10, f"replica {index + 1}: echo")
    return keys


def drill(cluster: Cluster, store: Store, traffic: Traffic, timeline: Timeline) -> None:
    """Under load: an alias move and a key revocation made on replica 1, a rollout, then
    SIGKILL to the replica holding the controller's lease, and its restart."""
    wait_until(lambda: len(traffic.done()) >= 20, 30, "the first answers")
    timeline.alias_move_s = alias_move(cluster)
    timeline.revocation_s = revocation(cluster)
    rollout = start_rollout(cluster)
    timeline.steps = len(rollout["steps"])
    timeline.victim = lease_holder_index(cluster, store)
    wait_until(lambda: served_by_candidate(traffic) >= 3, 10, "candidate answers")
    name = cluster.replica_name(timeline.victim)
    victim_pid = cluster.state.replicas[timeline.victim].pid
    timeline.step_at_kill = rollout_of(cluster, rollout["id"])["step"]
    timeline.killed_at = time.monotonic()
    cluster.kill(timeline.victim)
    cluster.wait_for_states({name: "DOWN"}, timeout_s=10)
    timeline.down_at = time.monotonic()
    wait_until(lambda: holder_pid(store) not in (None, victim_pid), 15, "the lease moving")
    timeline.lease_moved_at = time.monotonic()
    timeline.new_holder = holder(store) or ""
    timeline.restarted_at = time.monotonic()
    cluster.restart(timeline.victim)
    cluster.wait_for_states({name: "UP"}, timeout_s=15)
    timeline.up_at = time.monotonic()
    timeline.recovered_rows = recovered_rows(cluster, timeline.victim)
    wait_until(lambda: rollout_done(cluster, rollout["id"], timeline), 4 * PAUSE_S + 10, "rollout")
    timeline.promoted_at = time.monotonic()
    wait_until(  # the restarted replica takes its share again
        lambda: sum(a.replica == name and a.started > timeline.up_at for a in traffic.done()) >= 10,
        15,
        f"{name} serving again",
    )


def recovered_rows(cluster: Cluster, index: int) -> float:
    """The rows replica ``index`` replayed from its journal when it started."""
    metrics = httpx.get(
        f"{cluster.replica_url(index)}/metrics", headers=cluster.admin_headers, timeout=10
    ).text
    for family in text_string_to_metric_families(metrics):
        if family.name == "modelyard_request_log_recovered_rows":
            return float(family.samples[0].value)
    raise AssertionError("no modelyard_request_log_recovered_rows in /metrics")


def alias_move(cluster: Cluster) -> dict[str, float]:
    """Move echo's production alias on replica 1; seconds until each other replica serves
    the new version."""
    moved = httpx.put(
        f"{cluster.replica_url(0)}/api/models/echo/aliases/production",
        headers=cluster.admin_headers,
        json={"version": 2, "reason": "cluster test"},
        timeout=10,
    )
    moved.raise_for_status()
    return until_each_other_replica(
        cluster, partial(serves, cluster, model="echo", version="echo@2")
    )


def revocation(cluster: Cluster) -> dict[str, float]:
    """Revoke a key on replica 1 that every replica knows; seconds until each other replica
    refuses it."""
    created = create_key(cluster, "revoked-soon", {})
    for index in range(cluster.config.replicas):
        wait_until(partial(knows, cluster, index, created["secret"]), 10, "the new key")
    revoked = httpx.post(
        f"{cluster.replica_url(0)}/api/keys/{created['id']}/revoke",
        headers=cluster.admin_headers,
        timeout=10,
    )
    revoked.raise_for_status()
    return until_each_other_replica(cluster, lambda i: not knows(cluster, i, created["secret"]))


def until_each_other_replica(cluster: Cluster, done: Callable[[int], bool]) -> dict[str, float]:
    """Seconds from now until ``done(index)`` holds for each replica but the first."""
    changed = time.monotonic()
    pending = set(range(1, cluster.config.replicas))
    seen: dict[str, float] = {}
    while pending:
        for index in sorted(pending):
            if done(index):
                seen[cluster.replica_name(index)] = round(time.monotonic() - changed, 2)
                pending.discard(index)
        assert time.monotonic() - changed < 30, f"replicas {pending} never saw the change"
    return seen


def start_rollout(cluster: Cluster) -> dict[str, Any]:
    steps = [
        {"set_weight": 30},
        {"pause": {"duration_s": PAUSE_S}},
        {"set_weight": 60},
        {"pause": {"duration_s": PAUSE_S}},
    ]
    started = httpx.post(
        f"{cluster.url}/api/rollouts",
        headers=cluster.admin_headers,
        json={"model": "chat", "candidate": 2, "steps": steps, "reason": "cluster test"},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    rollout: dict[str, Any] = started.json()
    return rollout


def rollout_of(cluster: Cluster, rollout_id: int) -> dict[str, Any]:
    response = httpx.get(
        f"{cluster.url}/api/rollouts/{rollout_id}", headers=cluster.admin_headers, timeout=10
    )
    response.raise_for_status()
    rollout: dict[str, Any] = response.json()
    return rollout


def rollout_done(cluster: Cluster, rollout_id: int, timeline: Timeline) -> bool:
    timeline.status = rollout_of(cluster, rollout_id)["status"]
    return timeline.status != "running"


def served_by_candidate(traffic: Traffic) -> int:
    return sum(a.variant == "candidate" and a.answered for a in traffic.done())


# -- small probes ---------------------------------------------------------------------------


def create_key(cluster: Cluster, name: str, limits: dict[str, int]) -> dict[str, str]:
    response = httpx.post(
        f"{cluster.replica_url(0)}/api/keys",
        headers=cluster.admin_headers,
        json={"name": name, "limits": limits},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


def knows(cluster: Cluster, index: int, key: str) -> bool:
    response = httpx.get(
        f"{cluster.replica_url(index)}/api/keys/me",
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )
    return response.status_code == 200


def serves(cluster: Cluster, index: int, model: str, version: str) -> bool:
    """Whether replica ``index`` answers ``model`` with ``version``."""
    response = httpx.post(
        f"{cluster.replica_url(index)}/v1/chat/completions",
        headers=cluster.admin_headers,
        json={"model": model, "messages": [{"role": "user", "content": "which version?"}]},
        timeout=10,
    )
    return response.headers.get("x-modelyard-version") == version


def holder(store: Store) -> str | None:
    with store.session() as session:
        row = session.get(LeaseRow, LEASE)
        return row.holder if row is not None else None


def holder_pid(store: Store) -> int | None:
    """The pid of the process holding the controller's lease (``host:pid:object``)."""
    held = holder(store)
    return int(held.rsplit(":", 2)[1]) if held else None


def lease_holder_index(cluster: Cluster, store: Store) -> int:
    def found() -> bool:
        pid = holder_pid(store)
        return pid is not None and cluster.index_of_pid(pid) is not None

    wait_until(found, 10, "a replica holding the controller's lease")
    index = cluster.index_of_pid(holder_pid(store) or 0)
    assert index is not None
    return index


# -- what the log holds ---------------------------------------------------------------------


def logged_rows(store: Store, attempts: Sequence[Attempt]) -> list[tuple[str, str | None, int]]:
    """The request log's rows (id, user, status) once the replicas have flushed: every
    answered request is there, the killed replica's included (its journal was replayed
    when it was started again)."""
    expected = {a.request_id for a in attempts if a.answered}
    rows: list[tuple[str, str | None, int]] = []

    def flushed() -> bool:
        nonlocal rows
        with store.session() as session:
            query = select(RequestLogRow.id, RequestLogRow.user, RequestLogRow.status)
            rows = [(r.id, r.user, r.status) for r in session.execute(query)]
        return expected <= {row[0] for row in rows}

    # What is still missing then is counted and reported as lost, and the checks fail.
    with contextlib.suppress(TimeoutError):
        wait_until(flushed, 2 * FLUSH_S + 10, "the request log", every_s=0.25)
    return rows


# -- figures and checks ---------------------------------------------------------------------


def measure(
    cluster: Cluster,
    attempts: Sequence[Attempt],
    rows: Sequence[tuple[str, str | None, int]],
    timeline: Timeline,
) -> dict[str, Any]:
    answered = [a for a in attempts if a.answered]
    ids = Counter(row[0] for row in rows)
    users = Counter(row[1] for row in rows if row[2] == 200 and row[1])
    failed = [a for a in attempts if not a.answered]
    lost = [a for a in answered if ids[a.request_id] == 0]
    killed = timeline.killed_at
    return {
        "requests": len(attempts),
        "streamed": sum(a.stream for a in attempts),
        "answered": len(answered),
        "answered_by_status": tally(a.status for a in answered),
        "answered_by_replica": tally(a.replica for a in answered),
        "answered_by_version": tally(a.version for a in answered if a.status == 200),
        "errors_by_kind": errors_by_kind(attempts),
        "rows_logged_once": sum(ids[a.request_id] == 1 for a in answered),
        "rows_duplicated": sum(n > 1 for n in ids.values()),
        "users_served_twice": sum(n > 1 for n in users.values()),
        "lost_rows": len(lost),
        "lost_rows_answered_before_kill_s": spread(killed - a.ended for a in lost),
        "rows_replayed_from_the_journal": int(timeline.recovered_rows),
        "failed_but_logged": sum(users[a.user] > 0 for a in failed),
        "answered_while_replica_out": sum(
            a.answered and killed <= a.started <= timeline.up_at for a in attempts
        ),
        "haproxy_redispatched": int(timeline.haproxy.get("wredis", 0)),
        "failures": [failure(a, killed) for a in failed],
        "killed": cluster.replica_name(timeline.victim) + " (the lease holder)",
        "marked_down_after_s": round(timeline.down_at - killed, 2),
        "lease_moved_after_s": round(timeline.lease_moved_at - killed, 2),
        "new_lease_holder": timeline.new_holder,
        "restart_to_up_s": round(timeline.up_at - timeline.restarted_at, 2),
        "time_to_recover_s": round(max((a.ended for a in failed), default=killed) - killed, 2),
        "rollout": f"step {timeline.step_at_kill} of {timeline.steps} at the kill, then "
        f"{timeline.status} within {timeline.promoted_at - killed:.1f} s of it",
        "alias_move_seen_after_s": timeline.alias_move_s,
        "key_revocation_seen_after_s": timeline.revocation_s,
        "limited_key": limit_figures(attempts, "limited"),
        "budgeted_key": limit_figures(attempts, "budgeted"),
    }


def failure(attempt: Attempt, killed: float) -> str:
    """One failed request: how, where, and when against the kill."""
    how = "streamed" if attempt.stream else "not streamed"
    where = attempt.replica or "replica unknown"
    when = f"sent {attempt.started - killed:+.2f} s, ended {attempt.ended - killed:+.2f} s"
    detail = f": {attempt.detail}" if attempt.detail else ""
    return f"{attempt.error} ({how}, {where}, {when}){detail}"


def spread(values: Iterable[float]) -> list[float]:
    """[least, most], rounded; empty for none."""
    ordered = sorted(values)
    return [round(ordered[0], 2), round(ordered[-1], 2)] if ordered else []


def tally(values: Iterable[object]) -> dict[str, int]:
    return dict(sorted(Counter(str(value) for value in values).items()))


def limit_figures(attempts: Sequence[Attempt], key: str) -> dict[str, Any]:
    mine = [a for a in attempts if a.key == key]
    window = max(a.ended for a in mine) - min(a.started for a in mine)
    return {
        "requests": len(mine),
        "answered_200": sum(a.status == 200 and a.answered for a in mine),
        "refused_429": sum(a.status == 429 for a in mine),
        "refused_by": sorted({a.replica or "?" for a in mine if a.status == 429}),
        "window_s": round(window, 1),
    }


def report(figures: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(figures, indent=2))
    width = max(len(name) for name in figures)
    lines = ["", "cluster figures (3 replicas, HAProxy, PostgreSQL, Redis; one SIGKILL)"]
    lines += [f"  {name:<{width}}  {json.dumps(value)}" for name, value in figures.items()]
    lines.append(f"  (as JSON: {path})")
    print("\n".join(lines))


def check(
    cluster: Cluster,
    attempts: Sequence[Attempt],
    rows: Sequence[tuple[str, str | None, int]],
    timeline: Timeline,
    figures: dict[str, Any],
) -> None:
    victim = cluster.replica_name(timeline.victim)
    ids = Counter(row[0] for row in rows)
    # Every answered request is logged once, the killed replica's last ones included.
    assert figures["rows_duplicated"] == 0 and figures["users_served_twice"] == 0
    lost = [a for a in attempts if a.answered and ids[a.request_id] == 0]
    assert not lost, lost
    # How many of them the killed replica's journal gave back depends on how long before
    # the kill its last flush was (0 to 1 s of its answers): reported, not asserted here;
    # tests/cli/test_crash.py kills a server with every row still queued.
    # Nothing failed before the kill, nor once HAProxy had taken the dead replica out.
    failed = [a for a in attempts if not a.answered]
    assert all(timeline.killed_at <= a.ended for a in failed), failed
    assert not [a for a in failed if a.started > timeline.down_at], failed
    detection_s = (FALL + 1) * INTER_MS / 1000 + SLACK_S
    assert figures["marked_down_after_s"] <= detection_s
    # Changes made on replica 1 reach the others within a refresh.
    for seen in (timeline.alias_move_s, timeline.revocation_s):
        assert len(seen) == cluster.config.replicas - 1
        assert max(seen.values()) <= REFRESH_S + SLACK_S, seen
    # The lease moved to a survivor, and the rollout went on from there to its end.
    assert figures["lease_moved_after_s"] <= LEASE_TTL_S + TICK_S + SLACK_S
    assert str(cluster.state.replicas[timeline.victim].pid) not in timeline.new_holder
    assert timeline.step_at_kill < timeline.steps and timeline.status == "promoted"
    # One bucket and one budget for all replicas, each refusing from it.
    limited, budgeted = figures["limited_key"], figures["budgeted_key"]
    assert limited["answered_200"] <= LIMIT_RPM + LIMIT_RPM * limited["window_s"] / 60
    # Requests in flight when the budget runs out finish (docs/guard.md), and the killed
    # replica's uncharged answers are not charged: at most one in-flight request per client
    # for each.
    overshoot = 2 * CLIENTS * TOKENS_PER_ANSWER
    assert budgeted["answered_200"] * TOKENS_PER_ANSWER <= BUDGET_TOKENS + overshoot
    replicas = {cluster.replica_name(i) for i in range(cluster.config.replicas)}
    assert set(limited["refused_by"]) == set(budgeted["refused_by"]) == replicas
    assert figures["answered_by_replica"].get(victim, 0) > 0
