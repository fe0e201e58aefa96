"""Alerts: rules over the request log, evaluated in the background, with webhooks."""

from modelyard.observe.alerts.errors import (
    AlertError,
    AlertRuleExists,
    AlertRuleNotFound,
    InvalidAlertRule,
)
from modelyard.observe.alerts.evaluator import AlertEvaluator
from modelyard.observe.alerts.notify import RetryPolicy, WebhookNotifier
from modelyard.observe.alerts.protocol import AlertEventOut, AlertRule, AlertRuleOut
from modelyard.observe.alerts.service import AlertService

__all__ = [
    "AlertError",
    "AlertEvaluator",
    "AlertEventOut",
    "AlertRule",
    "AlertRuleExists",
    "AlertRuleNotFound",
    "AlertRuleOut",
    "AlertService",
    "InvalidAlertRule",
    "RetryPolicy",
    "WebhookNotifier",
]
