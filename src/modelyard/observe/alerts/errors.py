"""Errors of the alert service; ``status`` and ``code`` are what the API answers with."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class AlertError(ModelyardError):
    status = 400
    code = "invalid_alert_rule"


class InvalidAlertRule(AlertError):
    pass


class AlertRuleNotFound(AlertError):
    status = 404
    code = "alert_rule_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no alert rule named '{name}' (see `modelyard alert list`)")


class AlertRuleExists(AlertError):
    status = 409
    code = "alert_rule_exists"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"an alert rule named '{name}' exists already; change it with PUT "
            f"/api/alerts/rules/{name} or pick another name"
        )
