"""The service objects of one running app, kept on ``app.state`` (never module globals)."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass

from starlette.requests import Request

from modelyard.config import Settings
from modelyard.engines.pool import EnginePool
from modelyard.guard.runtime import GuardServices
from modelyard.observe.accounting import Accounting
from modelyard.observe.energy import CpuMeter, PowerModel
from modelyard.observe.metrics import Metrics
from modelyard.observe.quality.worker import LiveJudge
from modelyard.observe.requestlog import RequestLogWriter
from modelyard.observe.tracing import Tracing
from modelyard.registry import Registry
from modelyard.release.experiments import Experiments
from modelyard.release.rollouts import Rollouts
from modelyard.routing import RoutingTable
from modelyard.routing.breaker import Breakers
from modelyard.routing.cache import ResponseCache
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.refresh import RoutingRefresher
from modelyard.routing.shadow import ShadowRunner
from modelyard.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    registry: Registry
    routing: RoutingTable
    refresher: RoutingRefresher
    engines: EnginePool
    guard: GuardServices
    request_log: RequestLogWriter
    metrics: Metrics
    power: PowerModel
    meter: CpuMeter
    accounting: Accounting
    policies: TrafficPolicies
    breakers: Breakers
    shadows: ShadowRunner
    rollouts: Rollouts
    experiments: Experiments
    cache: ResponseCache
    live_judge: LiveJudge
    tracing: Tracing | None = None  # None: tracing is off (MODELYARD_TRACING)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def local_actor() -> str:
    """Who acts from this machine's CLI: ``user@host`` (it holds the store, so it is admin)."""
    return f"{getpass.getuser()}@{socket.gethostname()}"
