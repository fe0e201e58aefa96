"""Evaluate: tasks, metrics, runs, comparisons, gates, reports."""
