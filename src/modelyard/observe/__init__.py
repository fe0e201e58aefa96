"""Observe: the request log (and, later, metrics, feedback, drift, alerts)."""
