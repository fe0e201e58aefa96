"""CodeCarbon's reference data and rules, read from the installed package.

Everything that touches CodeCarbon lives here, so an upgrade that moves its files or
renames a function breaks one module (and its tests). We read its data files directly
(``cpu_power.csv``, ``global_energy_mix.json``, ``carbon_intensity_per_source.json``)
instead of through ``DataSource().get_*_data()``, which loads every table with pandas.
Nothing here starts a tracker, a thread or a network call. CodeCarbon is imported
inside the functions, so importing modelyard doesn't import it; the functions run
once, at startup.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from codecarbon.input import DataSource


class UnknownCountryError(ValueError):
    """The country code is not in CodeCarbon's energy-mix data."""


@dataclass(frozen=True)
class CpuTdp:
    matched: str  # the row of cpu_power.csv the CPU model matched
    tdp_w: float  # thermal design power of one package (socket)


@dataclass(frozen=True)
class CarbonIntensity:
    g_per_kwh: float
    source: str


def _data_source() -> DataSource:
    """CodeCarbon's map of its data files (building it reads nothing)."""
    from codecarbon.input import DataSource

    return DataSource()  # type: ignore[no-untyped-call]


def codecarbon_version() -> str:
    from codecarbon._version import __version__

    return str(__version__)


def cpu_tdp(cpu_model: str) -> CpuTdp | None:
    """The TDP CodeCarbon finds for a CPU model name (its fuzzy matcher over its
    cpu_power.csv), or None when CodeCarbon doesn't know the model."""
    from codecarbon.core.cpu import TDP

    with Path(_data_source().cpu_power_path).open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    # TDP() would detect the CPU and load pandas in __init__; the matcher needs neither,
    # and only reads table["Name"] (any sequence suits rapidfuzz). All rows, in order, so
    # ties resolve as in CodeCarbon.
    matcher = TDP.__new__(TDP)
    table = cast(Any, {"Name": [row["Name"] for row in rows]})
    matched = matcher._get_matching_cpu(cpu_model, table)
    if not matched:
        return None
    tdp = _watts(next(row["TDP"] for row in rows if row["Name"] == matched))
    # A few rows hold a range ("27.29.5"), which CodeCarbon fails to read: unknown to us.
    return None if tdp is None else CpuTdp(matched=matched, tdp_w=tdp)


def _watts(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def default_w_per_thread() -> float:
    """CodeCarbon's CPU power per thread for a CPU model it doesn't know."""
    from codecarbon.core.cpu import DEFAULT_POWER_PER_CORE

    return float(DEFAULT_POWER_PER_CORE)


def generic_cpu_power_w() -> float:
    """CodeCarbon's CPU power when the CPU model can't be detected at all."""
    from codecarbon.external.hardware import POWER_CONSTANT

    return float(POWER_CONSTANT)


def ram_power_w(memory_gb: float) -> float:
    """CodeCarbon 3's RAM power for ``memory_gb`` GiB: DIMMs estimated from the size, 5 W
    each on x86 (1.5 W on ARM) with less per DIMM in large machines, at least 2 DIMMs."""
    from codecarbon.external.ram import RAM

    return float(RAM(tracking_mode="process")._calculate_ram_power(memory_gb))


def process_memory_gb() -> float:
    """RSS of this process and its children in GiB, as CodeCarbon's "process" mode."""
    from codecarbon.external.ram import RAM

    return float(RAM(tracking_mode="process").process_memory_GB)


def logical_cpus() -> int:
    """Logical CPUs as CodeCarbon counts them (SLURM's allocation inside a SLURM job)."""
    from codecarbon.core.util import count_cpus

    return int(count_cpus() or 1)


def world_average() -> CarbonIntensity:
    with Path(_data_source().carbon_intensity_per_source_path).open(encoding="utf-8") as file:
        per_source = json.load(file)
    return CarbonIntensity(
        g_per_kwh=float(per_source["world_average"]),
        source=f"CodeCarbon world average ({per_source['world_average_source']})",
    )


def country_intensity(iso_code: str) -> CarbonIntensity:
    """A country's grid intensity from CodeCarbon's global_energy_mix.json, by its
    ISO 3166-1 alpha-3 code, computed by CodeCarbon's own rule."""
    from codecarbon.core.emissions import Emissions

    with Path(_data_source().global_energy_mix_data_path).open(encoding="utf-8") as file:
        energy_mix: dict[str, dict[str, Any]] = json.load(file)
    code = iso_code.strip().upper()
    mix = energy_mix.get(code)
    if mix is None:
        raise UnknownCountryError(
            f"country {iso_code!r} is not in CodeCarbon's energy-mix data: use an ISO 3166-1 "
            "alpha-3 code such as FRA, DEU or USA, or set the carbon intensity itself"
        )
    rate = Emissions._global_energy_mix_to_emissions_rate(mix)
    return CarbonIntensity(
        # Back from CodeCarbon's kg/kWh; the data has 3 decimals, the round trip adds noise.
        g_per_kwh=round(float(rate.kgs_per_kWh) * 1000, 6),
        source=f"CodeCarbon global_energy_mix.json: {mix['country_name']} ({code}), "
        f"{mix.get('year', 'year not given')}",
    )
