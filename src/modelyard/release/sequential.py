"""Group-sequential one-sided tests with Lan-DeMets alpha spending, for canary analysis.

Pure computation (no I/O). A canary runs until a planned amount of data, looks at it every
interval, and should stop early when the candidate is clearly bad. When the maximum is known
in advance, a group-sequential test spends its ``alpha`` over the planned looks and keeps
almost all the power of one test at the end (5 O'Brien-Fleming looks need 2-3 % more
information for the same power); an always-valid confidence sequence
(:mod:`modelyard.release.stats`) allows any number of looks and unplanned extensions but
pays for it: at ``alpha = 0.05`` its interval at the planned size is 1.55 times as wide as
the fixed-horizon one, as wide as a fixed test's with 1/2.4 of the information.

The model
---------
At look ``k`` the statistic ``Z_k`` has information ``I_k`` (increasing; any monotone unit:
for two arms, the effective sample size ``n_b·n_c/(n_b + n_c)``). Under the canonical joint
distribution (the "canonical joint distribution" of Jennison & Turnbull 2000) ::

    Z_k ~ N(theta·sqrt(I_k), 1),   Cov(Z_i, Z_j) = sqrt(I_i / I_j)  for i <= j,

that is, the score ``S_k = Z_k·sqrt(I_k)`` has independent increments
``S_k - S_{k-1} ~ N(theta·(I_k - I_{k-1}), I_k - I_{k-1})``. The test is one-sided with an
upper boundary only: it rejects at the first look with ``Z_k >= c_k``. A canary runs two such
tests, "is the candidate worse" and "is it no worse than the margin", each with its own
``alpha``; nothing here looks at a lower boundary.

Alpha spending (K. K. G. Lan & D. L. DeMets, "Discrete sequential boundaries for clinical
trials", Biometrika 70(3):659-663, 1983). A spending function ``f(t)`` increases from
``f(0) = 0`` to ``f(1) = alpha`` in the information fraction ``t = I_k / I_max``. Look ``k``
spends ``f(t_k) - f(t_{k-1})``: its bound ``c_k`` solves ::

    P_{theta=0}(Z_j < c_j for all j < k, Z_k >= c_k) = f(t_k) - f(t_{k-1}),

computed with the informations actually observed, so looks need not be equally spaced nor
planned in number. :func:`spent_alpha` has the two functions of Lan & DeMets (1983):

- O'Brien-Fleming type ``f(t) = 2 - 2·Phi(z_{1-alpha/2} / sqrt(t))``: almost nothing early,
  a final bound close to the fixed-horizon one;
- Pocock type ``f(t) = alpha·ln(1 + (e - 1)·t)``: about the same bound at every look, early
  stopping more likely, more information needed for the same power.

Over-run and under-run. A look with ``I >= I_max``, or one the caller marks ``final``, has
fraction 1 and spends all that is left: a last look that comes with less information than
planned (under-run) still brings the total to exactly ``alpha``, and one that comes with more
(over-run) uses its actual information in the correlations. Looks after that, looks whose
information did not grow past every earlier look's, and looks whose increment is negligible
(below 1e-15, see below) spend nothing: their bound is ``math.inf``, and they are left out
of every probability below, which is exact because a look that never rejects does not change
whether the others do.

The integration (P. Armitage, C. K. McPherson & B. C. Rowe, "Repeated significance tests on
accumulating data", JRSS A 132(2):235-244, 1969, in the form of C. Jennison & B. W. Turnbull,
"Group Sequential Methods with Applications to Clinical Trials", Chapman & Hall/CRC 2000,
chapter 19). Let ``h_k`` be the sub-density of ``Z_k`` on the paths that have not rejected
before look ``k``; ``h_1`` is the normal density, and with ``D = I_k - I_{k-1}`` ::

    h_k(z) = ∫_{u < c_{k-1}} h_{k-1}(u) · sqrt(I_k/D) · phi((z·sqrt(I_k) - u·sqrt(I_{k-1})
                                                          - theta·D) / sqrt(D)) du,
    P(reject at k) = ∫_{u < c_{k-1}} h_{k-1}(u) · Phi((u·sqrt(I_{k-1}) + theta·D
                                                          - c_k·sqrt(I_k)) / sqrt(D)) du.

Each integral is Simpson's rule over the continuation region of the previous look, cut
``TAIL = 8`` standard deviations below the mean ``theta·sqrt(I)`` (and above it, when the
bound lies beyond; the mass left out is below 1e-15 per look). Jennison & Turnbull
(section 19.2, p. 349, and gsDesign after them) put ``6r - 1`` nodes evenly on ``±3`` and
logarithmically spaced beyond; that is economical when looks are far apart, but the
integrand also holds the normal kernel of one step, whose standard deviation in ``u`` is
``sqrt(D / I_{k-1})``: 0.1 with 100 equally spaced looks, narrower than the logarithmic
tail spacing, and Simpson's rule then misses the mass by about a percent. Here the nodes are
evenly spaced, ``1/24`` apart (J&T's central spacing at ``r = 18``) or, when looks come
close, a third of the step's standard deviation into or out of the look (never below 0.01:
information steps under about 1e-3 of the information so far are integrated less
accurately). Against a grid three times finer the bounds agree to 1e-7 with 5 looks, 5e-6
with 30 and 2e-5 with 200 equally spaced looks. Each bound is a root of the crossing
probability, found with ``scipy.optimize.brentq`` on its logarithm so that small early
increments are solved as accurately as large ones; an increment below ``P(Z > TAIL)``
(O'Brien-Fleming looks before about 8 % of the information at ``alpha = 0.025``) would need
a bound beyond the grid and is left to the later looks, as spending is cumulative.

Drift. :func:`crossing_probability` and :func:`detectable_drift` describe ``theta`` by the
*drift*: the expected ``z`` at the planned maximum information, ``theta·sqrt(I_max)``. One
test at ``I_max`` has power ``Phi(drift - z_{1-alpha})``, so the drift it needs is
:func:`fixed_horizon_drift`, and ``(detectable_drift / fixed_horizon_drift)²`` is the
inflation factor ``R`` of Jennison & Turnbull (Tables 2.3-2.8): the factor by which the
sequential plan's maximum information exceeds the fixed test's for the same power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from modelyard.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: the server imports this module at start-up (issue 8)
    np = lazy_module("numpy")
special = lazy_module("scipy.special")
optimize = lazy_module("scipy.optimize")

Spending = Literal["obrien_fleming", "pocock"]

MAX_LOOKS = 200
# The grid: +-TAIL standard deviations around the mean, nodes SPACING apart or, when looks
# come close, STEPS_PER_SD nodes per standard deviation of a step, but never closer than
# MIN_SPACING (at most about 2 * TAIL / MIN_SPACING nodes).
TAIL = 8.0
SPACING = 1 / 24
STEPS_PER_SD = 3.0
MIN_SPACING = 0.01
# An increment below P(Z > TAIL) would need a bound beyond the grid: it is left for later looks.
_NEGLIGIBLE = 0.5 * math.erfc(TAIL / math.sqrt(2))
_ROOT_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Look:
    """One analysis of a group-sequential test and its upper ``z`` boundary."""

    information: float  # the information at this look
    fraction: float  # min(information / max_information, 1), or 1.0 at a final look
    bound: float  # upper z boundary (math.inf when this look spends nothing)
    spent: float  # cumulative alpha spent up to and including this look

    def __post_init__(self) -> None:
        _check_information(self.information)
        if not 0 < self.fraction <= 1:
            raise ValueError(f"a look's fraction must be in (0, 1], got {self.fraction}")
        if math.isnan(self.bound) or self.bound == -math.inf:
            raise ValueError(f"a look's bound must be a number or +inf, got {self.bound}")
        if not 0 <= self.spent < 1:
            raise ValueError(f"a look's spent alpha must be in [0, 1), got {self.spent}")


def spent_alpha(spending: Spending, alpha: float, fraction: float) -> float:
    """Cumulative one-sided alpha spent at information fraction t (0<=t; t>=1 gives alpha).

    obrien_fleming (Lan-DeMets O'Brien-Fleming-type): 2 - 2*Phi(z_{1-alpha/2}/sqrt(t));
    pocock (Lan-DeMets Pocock-type): alpha*ln(1 + (e-1)*t).
    """
    _check_alpha(alpha)
    if not fraction >= 0:
        raise ValueError(f"the information fraction must be >= 0, got {fraction}")
    if fraction >= 1:
        return alpha
    if fraction == 0:
        return 0.0
    if spending == "obrien_fleming":
        return float(2 * special.ndtr(special.ndtri(alpha / 2) / math.sqrt(fraction)))
    if spending == "pocock":
        return alpha * math.log1p((math.e - 1) * fraction)
    raise ValueError(f"spending must be 'obrien_fleming' or 'pocock', got {spending!r}")


def next_look(
    previous: Sequence[Look],
    information: float,
    *,
    max_information: float,
    alpha: float,
    spending: Spending,
    final: bool = False,
) -> Look:
    """The boundary for a new look, given the earlier looks.

    Spends ``spent_alpha(fraction)`` minus what ``previous`` spent, where
    ``fraction = min(information / max_information, 1)``; a ``final`` look, or one with
    ``information >= max_information``, has fraction 1.0 and spends all that is left. A look
    whose information did not grow past every earlier look's, or one after alpha is fully
    spent, spends nothing (``bound = inf``). The bound solves
    ``P_{theta=0}(Z_j < c_j for j < k, Z_k >= c) = increment`` with the actual informations.
    """
    _check_plan(len(previous) + 1, max_information, alpha)
    path = _Path(0.0)
    for look in previous:
        if math.isfinite(look.bound):
            path.add(look.information, look.bound)
    return _decide(previous, information, path, max_information, alpha, spending, final)


def boundaries(
    informations: Sequence[float],
    *,
    max_information: float,
    alpha: float,
    spending: Spending,
    final_last: bool = True,
) -> list[Look]:
    """:func:`next_look` applied in turn (the last look final when ``final_last``)."""
    if not informations:
        raise ValueError("boundaries need at least one look")
    _check_plan(len(informations), max_information, alpha)
    looks: list[Look] = []
    path = _Path(0.0)
    for index, information in enumerate(informations):
        final = final_last and index == len(informations) - 1
        look = _decide(looks, information, path, max_information, alpha, spending, final)
        looks.append(look)
    return looks


def crossing_probability(looks: Sequence[Look], drift: float) -> float:
    """P(Z_k >= bound_k at some look) when the expected z at the planned maximum is ``drift``.

    ``E[Z_k] = drift·sqrt(I_k / I_max)``, with the planned maximum ``I_max`` recovered from the
    looks as ``information / fraction`` of the last look whose fraction is below 1 (exactly
    the ``max_information`` that made it); when every look has fraction 1 (a single look, or
    all at or beyond the plan), ``I_max`` is the last look's information. ``drift = 0`` gives
    the total alpha spent.
    """
    _check_looks(looks)
    if not math.isfinite(drift):
        raise ValueError(f"drift must be a finite number, got {drift}")
    theta = drift / math.sqrt(_planned_maximum(looks))
    path = _Path(theta)
    total = 0.0
    for look in looks:
        if math.isfinite(look.bound):
            total += path.crossing(look.information, look.bound)
            path.add(look.information, look.bound)
    return min(total, 1.0)


def detectable_drift(looks: Sequence[Look], power: float = 0.8) -> float:
    """The smallest drift (expected z at the planned maximum) rejected with ``power``."""
    _check_looks(looks)
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1 (exclusive), got {power}")
    size = crossing_probability(looks, 0.0)
    if size <= 0:
        raise ValueError("these looks spend no alpha, so no drift makes them reject")
    if not power > size:
        raise ValueError(f"power must exceed the alpha these looks spend ({size:.3g})")
    high = max(1.0, fixed_horizon_drift(size, power))
    while crossing_probability(looks, high) < power:
        high *= 2
        if high > 1e3:
            raise ValueError("these looks cannot reach that power at any reasonable drift")
    return float(
        optimize.brentq(
            lambda drift: crossing_probability(looks, drift) - power,
            0.0,
            high,
            xtol=_ROOT_TOLERANCE,
        )
    )


def fixed_horizon_drift(alpha: float, power: float = 0.8) -> float:
    """``z_{1-alpha} + z_{power}``: the drift one test at the end needs for ``power``."""
    _check_alpha(alpha)
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1 (exclusive), got {power}")
    return float(special.ndtri(power) - special.ndtri(alpha))


def classic_constant(kind: Literal["pocock", "obrien_fleming"], looks: int, alpha: float) -> float:
    """The classic (non-spending) constant for ``looks`` equally spaced looks, one-sided.

    Pocock (1977): every bound is ``C_P``; O'Brien & Fleming (1979): the bound at look ``k``
    is ``C_B·sqrt(K/k)``. The constant makes the total one-sided crossing probability under
    ``theta = 0`` equal ``alpha``. Computed with the same integration as the spending bounds,
    it exists to check that integration against the published tables (Jennison & Turnbull
    2000, Table 2.1, whose two-sided tests at 0.05 are one-sided tests at 0.025 up to the
    chance of crossing both boundaries).
    """
    _check_alpha(alpha)
    if not 1 <= looks <= MAX_LOOKS:
        raise ValueError(f"looks must be between 1 and {MAX_LOOKS}, got {looks}")
    if kind == "pocock":
        shape = np.ones(looks)
    elif kind == "obrien_fleming":
        shape = np.sqrt(looks / np.arange(1, looks + 1))
    else:
        raise ValueError(f"kind must be 'pocock' or 'obrien_fleming', got {kind!r}")

    def excess(constant: float) -> float:
        path = _Path(0.0)
        total = 0.0
        for k, factor in enumerate(shape, start=1):
            total += path.crossing(float(k), constant * float(factor))
            path.add(float(k), constant * float(factor))
        return total - alpha

    low = float(-special.ndtri(alpha)) - 0.1
    high = float(-special.ndtri(alpha / looks)) + 0.1
    return float(optimize.brentq(excess, low, high, xtol=_ROOT_TOLERANCE))


@dataclass(frozen=True)
class _Density:
    """The sub-density of ``Z`` at one look on the paths still running, times Simpson's
    weights, at the grid's nodes (``information = 0``: the point mass at ``S_0 = 0``)."""

    nodes: np.ndarray
    weighted: np.ndarray
    information: float


class _Path:
    """The recursion over the looks that have a bound, for one ``theta``.

    The density of a look is put on its grid only when the next look's information is known,
    because the grid's spacing depends on the step to it.
    """

    def __init__(self, theta: float) -> None:
        self._theta = theta
        self._density = _Density(np.zeros(1), np.ones(1), 0.0)
        self._pending: tuple[float, float] | None = None

    def before(self, information: float) -> _Density:
        """The density of the last look added, ready for a step to ``information``."""
        if self._pending is not None:
            last, bound = self._pending
            if not information > last:
                raise ValueError("the looks that have a bound must have increasing information")
            spacing = _spacing(self._density.information, last, information)
            self._density = _advance(self._density, last, bound, self._theta, spacing)
            self._pending = None
        return self._density

    def add(self, information: float, bound: float) -> None:
        """Record a look with a bound; the next look must have more information."""
        self.before(information)
        self._pending = (information, bound)

    def crossing(self, information: float, bound: float) -> float:
        """``P(no rejection before, Z >= bound at information)``."""
        density = self.before(information)
        return float(special.ndtr(self._margin(density, information, bound)) @ density.weighted)

    def log_crossing(self, information: float, bound: float) -> float:
        """Its logarithm, accurate also where the probability underflows."""
        density = self.before(information)
        if density.nodes.size == 0:
            return -math.inf
        margin = special.log_ndtr(self._margin(density, information, bound))
        return float(special.logsumexp(margin, b=density.weighted))

    def _margin(self, density: _Density, information: float, bound: float) -> np.ndarray:
        """Per node, how many step deviations the expected score lies above the bound's."""
        step = information - density.information
        mean = density.nodes * math.sqrt(density.information) + self._theta * step
        return (mean - bound * math.sqrt(information)) / math.sqrt(step)


def _advance(
    density: _Density, information: float, bound: float, theta: float, spacing: float
) -> _Density:
    """The next look's density on its continuation region ``z < bound``."""
    if density.nodes.size == 0:
        return density
    nodes, weights = _grid(theta * math.sqrt(information), bound, spacing)
    step = information - density.information
    mean = density.nodes * math.sqrt(density.information) + theta * step
    kernel = np.subtract.outer(nodes * math.sqrt(information / step), mean / math.sqrt(step))
    np.square(kernel, out=kernel)
    np.multiply(kernel, -0.5, out=kernel)
    np.exp(kernel, out=kernel)
    values = kernel @ density.weighted * math.sqrt(information / (2 * math.pi * step))
    return _Density(nodes, weights * values, information)


def _grid(mean: float, bound: float, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced nodes on ``[mean - TAIL, min(bound, mean + TAIL)]`` and Simpson's weights."""
    low = mean - TAIL
    high = min(bound, mean + TAIL)
    if high <= low:
        return np.empty(0), np.empty(0)
    panels = max(1, math.ceil((high - low) / (2 * spacing)))
    nodes = np.linspace(low, high, 2 * panels + 1)
    weights = np.full(nodes.size, 2.0)
    weights[1::2] = 4.0
    weights[0] = weights[-1] = 1.0
    return nodes, weights * (high - low) / (6 * panels)


def _spacing(before: float, information: float, after: float) -> float:
    """Node spacing for a look: fine enough for the steps into and out of it."""
    step = min(information - before, after - information)
    return max(MIN_SPACING, min(SPACING, math.sqrt(step / information) / STEPS_PER_SD))


def _decide(
    previous: Sequence[Look],
    information: float,
    path: _Path,
    max_information: float,
    alpha: float,
    spending: Spending,
    final: bool,
) -> Look:
    """The next look's fraction, spending and bound; adds it to ``path`` when it has one."""
    _check_information(information)
    spent = previous[-1].spent if previous else 0.0
    grew = all(information > look.information for look in previous)
    fraction = 1.0 if final or information >= max_information else information / max_information
    target = spent_alpha(spending, alpha, fraction)
    increment = target - spent
    if not grew or increment < _NEGLIGIBLE:
        return Look(information, fraction, math.inf, spent)
    bound = _solve_bound(path, information, increment)
    path.add(information, bound)
    return Look(information, fraction, bound, target)


def _solve_bound(path: _Path, information: float, increment: float) -> float:
    """The ``c`` whose crossing probability at this look (under ``theta = 0``) is ``increment``."""
    alone = float(-special.ndtri(increment))  # the bound of this look without the others
    density = path.before(information)
    if density.information == 0:
        return alone  # the first look: Z is standard normal
    target = math.log(increment)

    def excess(bound: float) -> float:
        return path.log_crossing(information, bound) - target

    # P(Z >= c) - (rejected before) <= crossing(c) <= P(Z >= c): the root lies in between;
    # the steps only guard against the integration's rounding at the edges.
    rejected = max(0.0, 1.0 - float(np.sum(density.weighted)))
    low = float(-special.ndtri(min(increment + rejected, 0.5))) - 0.125
    high = alone + 0.125
    while excess(low) < 0:
        low -= 1.0
    while excess(high) > 0:
        high += 1.0
    return float(optimize.brentq(excess, low, high, xtol=_ROOT_TOLERANCE))


def _planned_maximum(looks: Sequence[Look]) -> float:
    for look in reversed(looks):
        if look.fraction < 1:
            return look.information / look.fraction
    return looks[-1].information


def _check_looks(looks: Sequence[Look]) -> None:
    if not looks:
        raise ValueError("at least one look is needed")
    if len(looks) > MAX_LOOKS:
        raise ValueError(f"at most {MAX_LOOKS} looks are supported, got {len(looks)}: thin them")


def _check_plan(count: int, max_information: float, alpha: float) -> None:
    _check_alpha(alpha)
    if not (max_information > 0 and math.isfinite(max_information)):
        raise ValueError(f"max_information must be positive and finite, got {max_information}")
    if count > MAX_LOOKS:
        raise ValueError(f"at most {MAX_LOOKS} looks are supported, got {count}: thin them")


def _check_information(information: float) -> None:
    if not (information > 0 and math.isfinite(information)):
        raise ValueError(f"information must be positive and finite, got {information}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
