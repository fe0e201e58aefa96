"""What the power model needs to know about the machine, detected once at startup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelyard.observe.energy import reference

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Host:
    cpu_model: str | None  # None: not detected
    logical_cpus: int
    sockets: int
    memory_gb: float  # RSS of this process and its children, GiB


def detect_host(cpuinfo: Path = CPUINFO) -> Host:
    model, sockets = _read_cpuinfo(cpuinfo)
    if model is None:
        model = _cpuinfo_brand()
    return Host(
        cpu_model=model,
        logical_cpus=reference.logical_cpus(),
        sockets=sockets,
        memory_gb=reference.process_memory_gb(),
    )


def _read_cpuinfo(path: Path) -> tuple[str | None, int]:
    """The CPU model name and the number of sockets (distinct ``physical id``) from
    /proc/cpuinfo; (None, 1) where there is no such file or field."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, 1
    model: str | None = None
    packages: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and model is None and value:
            model = value
        elif key == "physical id":
            packages.add(value)
    return model, max(1, len(packages))


def _cpuinfo_brand() -> str | None:
    """py-cpuinfo's brand string, as CodeCarbon reads it (slow: only when /proc/cpuinfo
    has no model name, e.g. on macOS or some ARM boards)."""
    from codecarbon.core.util import detect_cpu_model

    brand = detect_cpu_model()
    return str(brand) if brand else None
