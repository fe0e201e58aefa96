"""Per-request energy and carbon, estimated the way CodeCarbon does (see docs/energy.md).

``CpuMeter`` attributes the process's CPU time to requests; ``PowerModel`` (built once
by ``load_power_model``) turns a request's CPU seconds and share of wall time into Wh and
grams of CO2e, with CodeCarbon's TDP table, RAM rule, PUE and grid intensities.
"""

from modelyard.observe.energy.host import Host, detect_host
from modelyard.observe.energy.meter import CpuMeter, RequestUsage
from modelyard.observe.energy.power import EnergyEstimate, PowerModel, load_power_model
from modelyard.observe.energy.reference import UnknownCountryError

__all__ = [
    "CpuMeter",
    "EnergyEstimate",
    "Host",
    "PowerModel",
    "RequestUsage",
    "UnknownCountryError",
    "detect_host",
    "load_power_model",
]
