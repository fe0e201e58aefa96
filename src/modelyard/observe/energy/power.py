"""The power model: energy and carbon of a request, from the CPU seconds and the share of
wall time attributed to it, estimated the way CodeCarbon does in its "process" tracking
mode.

- CPU: the whole CPU's power at full load (CodeCarbon's TDP for the model, times the
  sockets) split evenly over the logical CPUs, so one CPU-second costs
  ``cpu_power_w / logical_cpus`` joules.
- RAM: CodeCarbon 3's RAM power for this process's RSS, drawn for as long as the request
  holds its share of the process (see ``CpuMeter``).
- GPU: only what an upstream reports for the request.
- Every part times the PUE, as CodeCarbon does; carbon is energy times the grid's
  intensity.

A model is immutable and built once at startup (``load_power_model``); ``with_memory``
gives the same model with the RAM figure for another RSS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelyard.observe.energy import reference
from modelyard.observe.energy.host import Host, detect_host

SECONDS_PER_HOUR = 3600.0
WH_PER_KWH = 1000.0
CPU_SETTING = "setting cpu_tdp_w"
RAM_SETTING = "setting ram_power_w"
INTENSITY_SETTING = "setting carbon_intensity_g_per_kwh"
NOT_MEASURED = (
    "power drawn while no request is active (idle), and any fixed baseline",
    "other processes on the machine, including engines in other processes",
    "GPU energy, unless an upstream reports it for the request",
    "network, storage and the client's side",
    "embodied emissions of the hardware",
)


@dataclass(frozen=True)
class EnergyEstimate:
    """Watt-hours of one request (PUE included in each part) and its grams of CO2e."""

    cpu_wh: float
    ram_wh: float
    gpu_wh: float
    total_wh: float
    carbon_g: float


@dataclass(frozen=True)
class PowerModel:
    cpu_model: str | None
    cpu_matched: str | None  # the cpu_power.csv row, when CodeCarbon knew the model
    cpu_power_w: float  # the whole CPU (every socket) at full load
    cpu_power_source: str
    logical_cpus: int
    sockets: int
    memory_gb: float  # RSS the RAM figure is for, GiB
    ram_power_w: float
    ram_power_source: str
    pue: float
    carbon_intensity_g_per_kwh: float
    carbon_intensity_source: str
    codecarbon_version: str

    @property
    def w_per_cpu(self) -> float:
        """Power of one logical CPU kept busy: what one CPU-second costs, in joules."""
        return self.cpu_power_w / self.logical_cpus

    def estimate(
        self, cpu_seconds: float, wall_seconds: float, gpu_wh: float = 0.0
    ) -> EnergyEstimate:
        """``cpu_seconds``: the request's CPU time; ``wall_seconds``: its share of the wall
        time the process served requests (``RequestUsage.wall_share_seconds``), not its
        latency; ``gpu_wh``: what an upstream reported, if anything."""
        if cpu_seconds < 0 or wall_seconds < 0 or gpu_wh < 0:
            raise ValueError("CPU seconds, wall seconds and GPU Wh must not be negative")
        cpu_wh = cpu_seconds * self.w_per_cpu / SECONDS_PER_HOUR * self.pue
        ram_wh = wall_seconds * self.ram_power_w / SECONDS_PER_HOUR * self.pue
        gpu = gpu_wh * self.pue
        total = cpu_wh + ram_wh + gpu
        return EnergyEstimate(
            cpu_wh=cpu_wh,
            ram_wh=ram_wh,
            gpu_wh=gpu,
            total_wh=total,
            carbon_g=total / WH_PER_KWH * self.carbon_intensity_g_per_kwh,
        )

    def with_memory(self, memory_gb: float | None = None) -> PowerModel:
        """This model with the RAM power for ``memory_gb`` GiB of RSS (default: the
        process's RSS now), e.g. after an engine loaded its weights."""
        memory = reference.process_memory_gb() if memory_gb is None else memory_gb
        if self.ram_power_source == RAM_SETTING:
            return replace(self, memory_gb=memory)
        return replace(self, memory_gb=memory, ram_power_w=reference.ram_power_w(memory))

    def assumptions(self) -> dict[str, object]:
        """How the figures are made, with every number they use and where it comes from."""
        return {
            "method": "CodeCarbon-style estimate (process tracking mode): CPU Wh = CPU "
            "seconds x CPU power / logical CPUs / 3600; RAM Wh = RAM power x the request's "
            "share of wall time / 3600; GPU Wh as reported by an upstream; each x PUE; "
            "carbon g = total Wh / 1000 x grid intensity g/kWh",
            "cpu": {
                "model": self.cpu_model,
                "matched": self.cpu_matched,
                "power_w": self.cpu_power_w,
                "logical_cpus": self.logical_cpus,
                "sockets": self.sockets,
                "w_per_cpu": self.w_per_cpu,
                "source": self.cpu_power_source,
                "basis": "CPU time of this process (all threads), attributed to requests",
            },
            "ram": {
                "memory_gb": self.memory_gb,
                "power_w": self.ram_power_w,
                "source": self.ram_power_source,
                "basis": "RSS of this process and its children (CodeCarbon's process mode), "
                "shared equally by the requests active at a time",
            },
            "gpu": {"source": "upstream report per request; not measured locally"},
            "pue": {"value": self.pue, "note": "CodeCarbon's default is 1.0 (no overhead)"},
            "carbon_intensity": {
                "g_per_kwh": self.carbon_intensity_g_per_kwh,
                "source": self.carbon_intensity_source,
            },
            "not_measured": list(NOT_MEASURED),
            "codecarbon_version": self.codecarbon_version,
        }


def load_power_model(
    cpu_tdp_w: float | None = None,
    pue: float = 1.0,
    carbon_intensity_g_per_kwh: float | None = None,
    country_iso_code: str | None = None,
    *,
    ram_power_w: float | None = None,
    host: Host | None = None,
) -> PowerModel:
    """Build the model once at startup. ``cpu_tdp_w`` replaces the CPU power of the whole
    machine (like CodeCarbon's ``force_cpu_power``), ``ram_power_w`` the RAM power;
    ``carbon_intensity_g_per_kwh`` wins over ``country_iso_code`` (ISO 3166-1 alpha-3),
    and with neither the intensity is CodeCarbon's world average. ``host`` defaults to
    this machine and process."""
    _check(cpu_tdp_w, pue, carbon_intensity_g_per_kwh, ram_power_w)
    machine = detect_host() if host is None else host
    matched, cpu_power_w, cpu_source = _cpu_power(machine, cpu_tdp_w)
    if ram_power_w is None:
        ram_w, ram_source = reference.ram_power_w(machine.memory_gb), "CodeCarbon 3 RAM model"
    else:
        ram_w, ram_source = ram_power_w, RAM_SETTING
    if carbon_intensity_g_per_kwh is not None:
        intensity = reference.CarbonIntensity(carbon_intensity_g_per_kwh, INTENSITY_SETTING)
    elif country_iso_code:
        intensity = reference.country_intensity(country_iso_code)
    else:
        intensity = reference.world_average()
    return PowerModel(
        cpu_model=machine.cpu_model,
        cpu_matched=matched,
        cpu_power_w=cpu_power_w,
        cpu_power_source=cpu_source,
        logical_cpus=machine.logical_cpus,
        sockets=machine.sockets,
        memory_gb=machine.memory_gb,
        ram_power_w=ram_w,
        ram_power_source=ram_source,
        pue=pue,
        carbon_intensity_g_per_kwh=intensity.g_per_kwh,
        carbon_intensity_source=intensity.source,
        codecarbon_version=reference.codecarbon_version(),
    )


def _check(
    cpu_tdp_w: float | None,
    pue: float,
    carbon_intensity_g_per_kwh: float | None,
    ram_power_w: float | None,
) -> None:
    if cpu_tdp_w is not None and cpu_tdp_w <= 0:
        raise ValueError(f"cpu_tdp_w must be positive watts, not {cpu_tdp_w}")
    if pue < 1.0:
        raise ValueError(f"PUE is total facility power / IT power, at least 1.0, not {pue}")
    if carbon_intensity_g_per_kwh is not None and carbon_intensity_g_per_kwh < 0:
        raise ValueError(f"carbon intensity must not be negative, not {carbon_intensity_g_per_kwh}")
    if ram_power_w is not None and ram_power_w < 0:
        raise ValueError(f"ram_power_w must not be negative, not {ram_power_w}")


def _cpu_power(host: Host, cpu_tdp_w: float | None) -> tuple[str | None, float, str]:
    """(matched cpu_power.csv row, whole-CPU power W, source), by CodeCarbon's rules."""
    if cpu_tdp_w is not None:
        return None, cpu_tdp_w, CPU_SETTING
    if host.cpu_model is None:
        generic = reference.generic_cpu_power_w()
        return None, generic, f"CodeCarbon's generic {generic:g} W (CPU model not detected)"
    found = reference.cpu_tdp(host.cpu_model)
    if found is not None:
        return (
            found.matched,
            found.tdp_w * host.sockets,
            f"CodeCarbon cpu_power.csv: {found.matched!r} {found.tdp_w:g} W "
            f"x {host.sockets} socket(s)",
        )
    # CodeCarbon multiplies this fallback by the sockets too (its max_power = tdp x sockets).
    per_thread = reference.default_w_per_thread()
    return (
        None,
        per_thread * host.logical_cpus * host.sockets,
        f"CodeCarbon's default for a CPU model it doesn't know: {per_thread:g} W per thread "
        f"x {host.logical_cpus} thread(s) x {host.sockets} socket(s)",
    )
