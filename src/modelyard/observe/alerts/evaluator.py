"""The background loop that evaluates every rule and fires, resolves and notifies.

Per rule: inactive → pending (the condition holds, waiting ``for_s``) → firing (an event
is stored) → inactive again once the condition clears (a resolved event is stored).
Pending and firing are kept in memory; firing is recovered from each rule's last event
at start, so a restart neither fires twice nor forgets to resolve. Pending is not: after
a restart a rule waits its ``for_s`` again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from modelyard.observe.alerts.notify import WebhookNotifier
from modelyard.observe.alerts.protocol import AlertEventOut, AlertRuleOut, EventState
from modelyard.observe.alerts.service import AlertService
from modelyard.store.lease import Leader
from modelyard.store.tables import utcnow

log = logging.getLogger(__name__)
Phase = Literal["inactive", "pending", "firing"]


@dataclass
class RuleState:
    phase: Phase = "inactive"
    pending_since: datetime | None = None


class AlertEvaluator:
    def __init__(self, service: AlertService, notifier: WebhookNotifier | None = None) -> None:
        self._service = service
        self._notifier = notifier or WebhookNotifier()
        self._states: dict[int, RuleState] = {}
        self._recovered = False
        self._notices: set[asyncio.Task[None]] = set()
        self._latest_notice: dict[int, asyncio.Task[None]] = {}

    @property
    def states(self) -> Mapping[int, RuleState]:
        """The state of each rule seen so far, by rule id."""
        return self._states

    async def recover(self) -> None:
        """Take up the rules whose last stored event says they are firing."""
        latest = await asyncio.to_thread(self._service.latest_events)
        self._states = {
            rule_id: RuleState("firing")
            for rule_id, event in latest.items()
            if event.state == "firing"
        }
        self._recovered = True

    async def run(self, interval_s: float, leader: Leader | None = None) -> None:
        """Evaluate every ``interval_s`` seconds, forever (run as one background task);
        with ``leader``, only in the rounds this process holds the alerts lease. The first
        round comes one interval after the start, like drift's."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                if leader is None or await leader():
                    await self.evaluate_once()
            except (SQLAlchemyError, ValidationError) as error:
                log.warning("alert evaluation failed; trying again next round: %s", error)

    async def evaluate_once(self, now: datetime | None = None) -> list[AlertEventOut]:
        """Evaluate every rule at ``now`` once; returns the events stored this round.
        Notifications go out in the background (``drain`` waits for them)."""
        now = now or utcnow()
        if not self._recovered:
            await self.recover()
        rules = await asyncio.to_thread(self._service.list_rules)
        for gone in set(self._states) - {rule.id for rule in rules}:
            del self._states[gone]
        events: list[AlertEventOut] = []
        for rule in rules:
            try:
                event = await self._evaluate(rule, now)
            except SQLAlchemyError as error:
                log.warning("alert rule %s: evaluation failed: %s", rule.name, error)
                continue
            if event is not None:
                events.append(event)
                self._notify(rule, event)
        return events

    async def drain(self) -> None:
        """Wait for the notifications under way (and any they queue behind)."""
        while self._notices:
            await asyncio.wait(list(self._notices))

    async def aclose(self) -> None:
        """Finish the notifications under way, then close the HTTP client."""
        await self.drain()
        await self._notifier.aclose()

    async def _evaluate(self, rule: AlertRuleOut, now: datetime) -> AlertEventOut | None:
        state = self._states.setdefault(rule.id, RuleState())
        if not rule.enabled:
            event = None
            if state.phase == "firing":
                event = await self._record(rule, "resolved", now, None, {"reason": "disabled"})
            del self._states[rule.id]
            return event
        value, samples = await asyncio.to_thread(self._service.evaluate_metric, rule, now)
        measured = {"samples": samples}
        if value is None or samples < rule.min_requests or not rule.holds(value):
            if state.phase != "firing":
                state.phase, state.pending_since = "inactive", None
                return None
            reason = "cleared" if value is not None and samples >= rule.min_requests else "no data"
            event = await self._record(rule, "resolved", now, value, {**measured, "reason": reason})
            state.phase = "inactive"
            return event
        if state.phase == "firing":
            return None
        if state.pending_since is None:
            state.phase, state.pending_since = "pending", now
        if now - state.pending_since < timedelta(seconds=rule.for_s):
            return None
        details = {**measured, "pending_since": state.pending_since.isoformat()}
        event = await self._record(rule, "firing", now, value, details)
        state.phase, state.pending_since = "firing", None
        return event

    async def _record(
        self,
        rule: AlertRuleOut,
        state: EventState,
        now: datetime,
        value: float | None,
        details: dict[str, Any],
    ) -> AlertEventOut | None:
        return await asyncio.to_thread(
            self._service.record_event, rule.id, state, at=now, value=value, details=details
        )

    def _notify(self, rule: AlertRuleOut, event: AlertEventOut) -> None:
        if not rule.webhooks:
            return
        # A rule's notices go out in order: its resolution never overtakes its firing.
        before = self._latest_notice.get(rule.id)
        task = asyncio.create_task(self._send(rule, event, before))
        self._latest_notice[rule.id] = task
        self._notices.add(task)
        task.add_done_callback(lambda done: self._forget(rule.id, done))

    async def _send(
        self, rule: AlertRuleOut, event: AlertEventOut, before: asyncio.Task[None] | None
    ) -> None:
        if before is not None:
            await asyncio.wait([before])
        deliveries = await self._notifier.deliver_all(rule.webhooks, payload(rule, event))
        try:
            await asyncio.to_thread(self._service.record_deliveries, event.id, deliveries)
        except SQLAlchemyError as error:
            log.warning("alert event %d: could not record deliveries: %s", event.id, error)

    def _forget(self, rule_id: int, task: asyncio.Task[None]) -> None:
        self._notices.discard(task)
        if self._latest_notice.get(rule_id) is task:
            del self._latest_notice[rule_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("alert notification failed", exc_info=task.exception())


def payload(rule: AlertRuleOut, event: AlertEventOut) -> dict[str, Any]:
    """What a webhook receives. ``event_id`` is stable across retries; ``incident_id`` is
    shared by a firing event and its resolution."""
    return {
        "event_id": event.id,
        "incident_id": event.details.get("incident_id", event.id),
        "rule": rule.name,
        "state": event.state,
        "severity": rule.severity,
        "metric": rule.metric,
        "route": rule.route,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "value": event.value,
        "window_s": rule.window_s,
        "for_s": rule.for_s,
        "at": event.at.isoformat(),
        "details": event.details,
    }
