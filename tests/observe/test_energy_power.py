"""The power model against CodeCarbon's own computation for the same CPU, RAM and country."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import PropertyMock

import psutil
import pytest
from codecarbon._version import __version__ as codecarbon_version
from codecarbon.core import cpu as codecarbon_cpu
from codecarbon.core.emissions import Emissions
from codecarbon.core.units import Energy, Time
from codecarbon.external import hardware as codecarbon_hardware
from codecarbon.external.geography import GeoMetadata
from codecarbon.external.hardware import CPU, MODE_CPU_LOAD
from codecarbon.external.ram import RAM
from codecarbon.input import DataSource

from modelyard.observe.energy import (
    Host,
    PowerModel,
    UnknownCountryError,
    detect_host,
    load_power_model,
)

KNOWN_CPUS = {
    "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz": 145.0,
    "AMD EPYC 7763 64-Core Processor": 280.0,
    "Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz": 15.0,
    "Apple M1": 10.0,
}
UNKNOWN_CPUS = ["AMD EPYC", "Foo Bar 9000"]


def host(
    cpu_model: str | None = "Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz",
    logical_cpus: int = 8,
    sockets: int = 1,
    memory_gb: float = 1.0,
) -> Host:
    return Host(cpu_model, logical_cpus, sockets, memory_gb)


def codecarbon_tdp(monkeypatch: pytest.MonkeyPatch, cpu_model: str, threads: int) -> float:
    """What CodeCarbon's TDP() finds for ``cpu_model`` on a machine with ``threads``."""
    monkeypatch.setattr(codecarbon_cpu, "detect_cpu_model", lambda: cpu_model)
    monkeypatch.setattr(codecarbon_cpu, "count_cpus", lambda: threads)
    tdp = codecarbon_cpu.TDP()  # type: ignore[no-untyped-call]
    assert tdp.model == cpu_model
    return float(tdp.tdp)


def codecarbon_g_per_kwh(iso_code: str) -> float:
    """CodeCarbon's emissions for 1 kWh in a country (the world average if it has no data)."""
    data = DataSource()  # type: ignore[no-untyped-call]
    country = GeoMetadata(country_iso_code=iso_code)
    return Emissions(data).get_country_emissions(Energy(1.0), country) * 1000


@pytest.mark.parametrize("cpu_model", [*KNOWN_CPUS, *UNKNOWN_CPUS])
@pytest.mark.parametrize("sockets", [1, 2])
def test_cpu_power_is_codecarbons_tdp_times_sockets(
    monkeypatch: pytest.MonkeyPatch, cpu_model: str, sockets: int
) -> None:
    model = load_power_model(host=host(cpu_model, logical_cpus=12, sockets=sockets))
    # ResourceTracker.set_CPU_tracking: max_power = tdp.tdp * cpu_physical_count
    expected = codecarbon_tdp(monkeypatch, cpu_model, threads=12) * sockets
    assert model.cpu_power_w == pytest.approx(expected)
    assert model.w_per_cpu == pytest.approx(expected / 12)
    if cpu_model in KNOWN_CPUS:
        assert model.cpu_power_w == KNOWN_CPUS[cpu_model] * sockets
        assert model.cpu_matched is not None
        assert model.cpu_power_source.startswith("CodeCarbon cpu_power.csv")
    else:
        assert model.cpu_power_w == 4.0 * 12 * sockets
        assert model.cpu_matched is None
        assert "4 W per thread" in model.cpu_power_source


def test_a_row_codecarbon_cannot_read_falls_back_to_the_unknown_cpu_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # cpu_power.csv gives "27.29.5" W for this one; CodeCarbon's TDP() raises on it.
    with pytest.raises(ValueError, match=r"27\.29\.5"):
        codecarbon_tdp(monkeypatch, "Intel Celeron 1000A", threads=4)
    model = load_power_model(host=host("Intel Celeron 1000A", logical_cpus=4))
    assert model.cpu_power_w == 16.0
    assert model.cpu_matched is None


def test_undetected_cpu_model_gets_codecarbons_generic_power(tmp_path: Path) -> None:
    model = load_power_model(host=host(None, logical_cpus=4))
    generic = CPU.from_utils(str(tmp_path), MODE_CPU_LOAD, model="Unknown", tdp=None)
    assert model.cpu_power_w == generic._tdp == 85
    assert "not detected" in model.cpu_power_source


def test_cpu_energy_equals_codecarbons_process_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """12.5 CPU-seconds over 30 s of wall time: CodeCarbon's process tracking draws
    TDP x (cpu / wall) / cpus for 30 s; the model must give the same Wh."""
    name = "AMD EPYC 7763 64-Core Processor"
    monkeypatch.setattr(codecarbon_hardware, "count_cpus", lambda: 16)
    tracked = CPU.from_utils(str(tmp_path), MODE_CPU_LOAD, name, 280, tracking_mode="process")
    tracked._last_measurement_time = 1000.0
    tracked._last_cpu_times = {1: 50.0}
    monkeypatch.setattr(tracked, "_get_process_cpu_times", lambda: {1: 62.5})
    monkeypatch.setattr(codecarbon_hardware, "time", SimpleNamespace(time=lambda: 1030.0))
    power = tracked._get_power_from_cpu_load()  # type: ignore[no-untyped-call]
    codecarbon_wh = Energy.from_power_and_time(power=power, time=Time(30.0)).kWh * 1000

    model = load_power_model(host=host(name, logical_cpus=16))
    assert model.estimate(cpu_seconds=12.5, wall_seconds=0.0).cpu_wh == pytest.approx(
        codecarbon_wh, rel=1e-6
    )
    assert codecarbon_wh == pytest.approx(12.5 * 280 / 16 / 3600)


def test_cpu_tdp_setting_replaces_the_table() -> None:
    model = load_power_model(cpu_tdp_w=120.0, host=host(logical_cpus=8))
    assert model.cpu_power_w == 120.0
    assert model.w_per_cpu == 15.0
    assert model.cpu_power_source == "setting cpu_tdp_w"
    assert model.estimate(cpu_seconds=3600, wall_seconds=0).cpu_wh == pytest.approx(15.0)


@pytest.mark.parametrize(("memory_gb", "watts"), [(0.5, 10.0), (24.0, 20.0), (100.0, 38.0)])
def test_ram_power_is_codecarbons_process_mode_for_the_rss(
    monkeypatch: pytest.MonkeyPatch, memory_gb: float, watts: float
) -> None:
    monkeypatch.setattr(RAM, "_detect_arm_cpu", lambda self: False)
    monkeypatch.setattr(RAM, "process_memory_GB", PropertyMock(return_value=memory_gb))
    monkeypatch.setattr(RAM, "machine_memory_GB", PropertyMock(return_value=1000.0))
    codecarbon_w = RAM(tracking_mode="process").total_power().W

    model = load_power_model(host=host(memory_gb=memory_gb))
    assert model.ram_power_w == pytest.approx(codecarbon_w)
    assert model.ram_power_w == watts  # 5 W per estimated DIMM, at least two
    assert model.memory_gb == memory_gb


def test_detected_memory_is_this_process_rss_not_the_machine() -> None:
    model = load_power_model()
    rss_gb = psutil.Process().memory_info().rss / 2**30
    assert model.memory_gb == pytest.approx(rss_gb, rel=0.5)
    assert model.memory_gb < psutil.virtual_memory().total / 2**30 / 2


def test_with_memory_recomputes_the_ram_power_unless_it_is_set() -> None:
    model = load_power_model(host=host(memory_gb=1.0))
    bigger = model.with_memory(100.0)
    assert (model.ram_power_w, bigger.ram_power_w, bigger.memory_gb) == (10.0, 38.0, 100.0)
    fixed = load_power_model(ram_power_w=7.0, host=host()).with_memory(100.0)
    assert fixed.ram_power_w == 7.0
    assert fixed.ram_power_source == "setting ram_power_w"


def test_estimate_adds_the_parts_applies_pue_and_intensity() -> None:
    model = load_power_model(
        pue=1.2, carbon_intensity_g_per_kwh=400.0, host=host(logical_cpus=8)
    )  # i7-8550U: 15 W / 8 threads; 10 W of RAM
    estimate = model.estimate(cpu_seconds=3600, wall_seconds=360, gpu_wh=2.0)
    assert estimate.cpu_wh == pytest.approx(1.875 * 1.2)
    assert estimate.ram_wh == pytest.approx(1.0 * 1.2)
    assert estimate.gpu_wh == pytest.approx(2.0 * 1.2)
    assert estimate.total_wh == pytest.approx((1.875 + 1.0 + 2.0) * 1.2)
    assert estimate.carbon_g == pytest.approx(estimate.total_wh / 1000 * 400)


def test_world_average_is_the_default_intensity() -> None:
    model = load_power_model(host=host())
    assert model.carbon_intensity_g_per_kwh == pytest.approx(codecarbon_g_per_kwh("XXX"))
    assert model.carbon_intensity_g_per_kwh == 475
    assert model.carbon_intensity_source.startswith("CodeCarbon world average")


@pytest.mark.parametrize("iso_code", ["FRA", "DEU", "USA", "IND", "chn"])
def test_country_intensity_is_codecarbons(iso_code: str) -> None:
    model = load_power_model(country_iso_code=iso_code, host=host())
    assert model.carbon_intensity_g_per_kwh == pytest.approx(codecarbon_g_per_kwh(iso_code))
    assert model.carbon_intensity_g_per_kwh != 475
    assert f"({iso_code.upper()})" in model.carbon_intensity_source


def test_unknown_country_is_refused_with_what_to_do() -> None:
    with pytest.raises(UnknownCountryError, match="alpha-3"):
        load_power_model(country_iso_code="FR", host=host())


def test_intensity_setting_wins_over_the_country() -> None:
    model = load_power_model(carbon_intensity_g_per_kwh=12.5, country_iso_code="IND", host=host())
    assert model.carbon_intensity_g_per_kwh == 12.5
    assert model.carbon_intensity_source == "setting carbon_intensity_g_per_kwh"


def test_assumptions_state_method_sources_and_figures() -> None:
    model = load_power_model(
        pue=1.3, country_iso_code="FRA", host=host(logical_cpus=8, memory_gb=2.0)
    )
    assumptions = model.assumptions()
    assert "CPU seconds" in str(assumptions["method"])
    assert assumptions["cpu"] == {
        "model": "Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz",
        "matched": "Intel Core i7-8550U",
        "power_w": 15.0,
        "logical_cpus": 8,
        "sockets": 1,
        "w_per_cpu": 1.875,
        "source": "CodeCarbon cpu_power.csv: 'Intel Core i7-8550U' 15 W x 1 socket(s)",
        "basis": "CPU time of this process (all threads), attributed to requests",
    }
    ram = assumptions["ram"]
    assert isinstance(ram, dict)
    assert (ram["memory_gb"], ram["power_w"], ram["source"]) == (
        2.0,
        10.0,
        "CodeCarbon 3 RAM model",
    )
    assert assumptions["pue"] == {"value": 1.3, "note": "CodeCarbon's default is 1.0 (no overhead)"}
    intensity = assumptions["carbon_intensity"]
    assert isinstance(intensity, dict)
    assert intensity["g_per_kwh"] == pytest.approx(56.039)
    assert "global_energy_mix.json: France (FRA)" in intensity["source"]
    assert any("idle" in item for item in assumptions["not_measured"])  # type: ignore[attr-defined]
    assert assumptions["codecarbon_version"] == codecarbon_version


@pytest.mark.parametrize(
    "settings",
    [{"cpu_tdp_w": 0.0}, {"pue": 0.9}, {"carbon_intensity_g_per_kwh": -1.0}, {"ram_power_w": -1}],
)
def test_impossible_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        load_power_model(host=host(), **settings)  # type: ignore[arg-type]


def test_negative_usage_is_refused() -> None:
    model = load_power_model(host=host())
    with pytest.raises(ValueError):
        model.estimate(cpu_seconds=-1.0, wall_seconds=1.0)


def test_host_is_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "".join(
            f"processor\t: {i}\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
            f"physical id\t: {i % 2}\n\n"
            for i in range(4)
        )
    )
    detected = detect_host(cpuinfo)
    assert detected.cpu_model == "AMD EPYC 7763 64-Core Processor"
    assert detected.sockets == 2
    assert detected.logical_cpus == psutil.cpu_count()


def test_host_without_cpuinfo_asks_cpuinfo_like_codecarbon(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from codecarbon.core import util

    monkeypatch.setattr(util, "detect_cpu_model", lambda: "Apple M1")
    detected = detect_host(tmp_path / "missing")
    assert (detected.cpu_model, detected.sockets) == ("Apple M1", 1)


def test_loading_is_cheap_and_starts_nothing() -> None:
    """Importing the package doesn't import CodeCarbon; building the model loads no pandas
    and starts no thread (run in a fresh interpreter: this one has imported both)."""
    script = (
        "import sys, threading\n"
        "import modelyard.observe.energy as energy\n"
        "assert 'codecarbon' not in sys.modules\n"
        "model = energy.load_power_model()\n"
        "assert 'pandas' not in sys.modules, 'pandas'\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert model.cpu_power_w > 0\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_power_model_is_immutable() -> None:
    model = load_power_model(host=host())
    assert isinstance(model, PowerModel)
    with pytest.raises(AttributeError):
        model.pue = 2.0  # type: ignore[misc]
