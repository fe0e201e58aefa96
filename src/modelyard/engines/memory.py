"""This process's memory, as a kind's probe reports it (Linux's /proc; 0 elsewhere)."""

from __future__ import annotations

from pathlib import Path


def rss_mb() -> float:
    """Resident memory now, in MiB."""
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """The most resident memory the process has had, in MiB."""
    return _status_kb("VmHWM") / 1024


def _status_kb(key: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return float(line.split()[1])
    except OSError:
        return 0.0
    return 0.0
