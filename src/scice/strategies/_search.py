"""Searchers: bracket each target cluster count with a resolution interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._warn import warn_from_caller
from ._base import Searcher, SearchOutcome

__all__ = ["BisectionSearcher", "FixedResolutions"]

#: ``lower_bound="auto"`` and ``start="auto"`` in resolution units (the graph's weighted edge density).
AUTO_LOWER_UNITS = 1e-6
AUTO_START_UNITS = 0.125
#: A gap between the last probe below a target and the first shattering probe narrower than
#: this fraction of its upper end ends the search for that target (it is not reachable).
SHATTER_GAP = 0.1


def _shatters(table: dict[float, float], gamma: float) -> bool:
    """Whether the probe at ``gamma`` shattered the graph (its bracketing count is infinite)."""
    return bool(np.isinf(table[gamma]))


@dataclass(frozen=True)
class _Scale:
    """Widths and midpoints of resolution intervals: in ``log(gamma)`` for CPM, linear otherwise."""

    log: bool

    def width(self, a: float, b: float) -> float:
        # log(b / a): exact under a common power-of-two scaling of a and b, unlike log(b) - log(a)
        return float(np.log(b / a)) if self.log else float(b - a)

    def mid(self, a: float, b: float) -> float:
        return float(np.sqrt(a * b)) if self.log else 0.5 * (a + b)


class BisectionSearcher(Searcher):
    """Shared bisection search over the resolution, as in scICE, with an adaptive stop.

    CPM: bisection on ``log(gamma)`` between ``lower_bound`` and an upper bound
    found by doubling from ``start`` until the median cluster count exceeds the
    largest target. Both default to multiples of the graph's resolution unit
    (its weighted edge density, ``SearchContext.resolution_unit``), so a graph whose
    weights are all scaled by c gives the same probes scaled by c and the same
    counts. Modularity: linear bisection in ``[0, upper]``, doubling from 1.
    Every probe runs ``n_probe_trials`` trials of ``probe_iterations`` iterations
    with ``probe_beta`` and is shared by all targets.

    A probe whose median trial leaves most cells in clusters smaller than
    ``min_cluster_size`` (the resolution shatters the graph) counts as above
    every target: its effective count, which falls towards 0 there, would
    otherwise read as too few clusters.

    For target k the interval is ``[last probe with median count < k, first probe
    with median count > k]``. The searcher bisects until a probe with median count
    k exists, then refines each boundary. Bisection runs in rounds: a round probes
    the next resolution of every unsettled target (and both boundaries of a
    target) together, so its probes run in parallel on the workers.

    The original stops a boundary only when
    its two resolutions differ by at most ``resolution_tolerance`` (absolute); the
    interval only seeds a grid, so this searcher also stops a boundary once its
    width is at most ``plateau_fraction`` of the width of the known k region (both
    measured in log(gamma) for CPM). ``plateau_fraction=0`` gives the original
    behaviour.

    Parameters
    ----------
    n_probe_trials : int, default=10
        Trials per probe.
    probe_iterations : int, default=3
        Leiden iterations per probe trial.
    probe_beta : float, default=0.01
        Leiden randomness per probe trial.
    plateau_fraction : float, default=0.1
        Adaptive stopping rule (see above); 0 disables it.
    lower_bound : float or "auto", default="auto"
        Smallest CPM resolution probed; ``"auto"`` is ``1e-6`` resolution units
        (about 1e-8 on pbmc68k_reduced's graph). A float is an absolute resolution.
    start : float or "auto", default="auto"
        First CPM upper-bound candidate (doubled until it is above every target);
        ``"auto"`` is ``1/8`` resolution unit (about 1e-3 on pbmc68k_reduced's graph).
    max_probes : int, default=400
        Safety cap on the number of probes; a search it stops warns.
    """

    def __init__(
        self,
        n_probe_trials: int = 10,
        probe_iterations: int = 3,
        probe_beta: float = 0.01,
        plateau_fraction: float = 0.1,
        lower_bound: float | str = "auto",
        start: float | str = "auto",
        max_probes: int = 400,
    ):
        self.n_probe_trials = n_probe_trials
        self.probe_iterations = probe_iterations
        self.probe_beta = probe_beta
        self.plateau_fraction = plateau_fraction
        self.lower_bound = lower_bound
        self.start = start
        self.max_probes = max_probes

    # -- helpers ------------------------------------------------------------
    def _cpm_bounds(self, context) -> tuple[float, float]:
        """``(lower_bound, start)`` as absolute CPM resolutions for this graph."""
        unit = context.resolution_unit
        out = []
        for name, default in (("lower_bound", AUTO_LOWER_UNITS), ("start", AUTO_START_UNITS)):
            value = getattr(self, name)
            if isinstance(value, str):
                if value != "auto":
                    raise ValueError(f"{name} must be a positive number or 'auto', got {value!r}.")
                value = default * unit
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number or 'auto', got {value!r}.")
            out.append(float(value))
        return out[0], out[1]

    @staticmethod
    def _bracketing_count(probe) -> float:
        """The count bisection compares with targets: infinite where the probe shatters the graph."""
        return float("inf") if probe.shattered else probe.median_count

    def _probe(self, context, gamma: float, table: dict[float, float]) -> float:
        if gamma not in table:
            p = context.probe(gamma, self.n_probe_trials, self.probe_iterations, self.probe_beta)
            table[gamma] = self._bracketing_count(p)
        return table[gamma]

    def _probe_many(self, context, gammas: list[float], table: dict[float, float]) -> None:
        for p in context.probe_many(gammas, self.n_probe_trials, self.probe_iterations, self.probe_beta):
            table[p.gamma] = self._bracketing_count(p)

    @staticmethod
    def _interval(table: dict[float, float], k: int):
        """(lo, hi, k_gammas) from the probes; lo/hi None when missing.

        ``lo`` is the last probe with median count < k before ``hi``, the first
        probe with median count > k. At the ends of the count range a probe with
        count exactly k stands in: the smallest probed resolution when it already
        gives k (k = number of components), the largest probe with count k when
        no probe gives more (k = the largest reachable count). ``k_gammas`` are
        the probes in ``[lo, hi]`` with median count k.
        """
        gammas = np.array(sorted(table))
        counts = np.array([table[g] for g in gammas])
        above = np.flatnonzero(counts > k)
        if above.size:
            hi_idx = int(above[0])
        else:
            equal = np.flatnonzero(counts == k)
            if equal.size == 0:
                return None, None, []
            hi_idx = int(equal[-1])
        below = np.flatnonzero(counts[:hi_idx] < k)
        if below.size:
            lo_idx = int(below[-1])
        elif counts[0] == k:
            lo_idx = 0
        else:
            return None, float(gammas[hi_idx]), []
        span = slice(lo_idx, hi_idx + 1)
        k_gammas = [float(g) for g, c in zip(gammas[span], counts[span], strict=False) if c == k]
        return float(gammas[lo_idx]), float(gammas[hi_idx]), k_gammas

    # -- the stages of a search ---------------------------------------------
    def _probe_bounds(self, context, table: dict[float, float], scale: _Scale, hi_target: int) -> bool:
        """Probe the smallest resolution, then double an upper bound until it is above every target.

        Returns whether ``max_probes`` stopped the doubling before that.
        """
        lower, upper = self._cpm_bounds(context) if scale.log else (0.0, 1.0)
        self._probe(context, lower, table)
        ceiling = upper * 2.0**60
        while upper < ceiling:
            if len(table) >= self.max_probes:
                return True
            count = self._probe(context, upper, table)
            # Stop once above every target (a shattering resolution counts as above),
            # once only clusters below min_cluster_size remain, or once every cell is
            # its own cluster.
            if count > hi_target or count == 0 or count >= context.n_vertices:
                break
            upper *= 2.0
        return False

    def _next_probes(self, table: dict[float, float], k: int, scale: _Scale, tol: float) -> list[float]:
        """Where target k wants its next probes (none once its interval is settled)."""
        lo, hi, k_gammas = self._interval(table, k)
        if lo is None or hi is None:
            return []
        if not k_gammas:
            if _shatters(table, hi) and hi - lo <= SHATTER_GAP * hi:
                return []  # k lies nowhere between the largest count seen and the shattered regime
            return [] if hi - lo <= tol else [scale.mid(lo, hi)]
        plateau = scale.width(k_gammas[0], k_gammas[-1]) if len(k_gammas) > 1 else 0.0
        stop = max(self.plateau_fraction * plateau, 0.0)
        wanted = []
        for a, b in ((lo, k_gammas[0]), (k_gammas[-1], hi)):
            if b - a > tol and scale.width(a, b) > stop:
                wanted.append(scale.mid(a, b))
        return wanted

    def _bisect(self, context, table: dict[float, float], ordered: list[int], scale: _Scale, tol: float) -> bool:
        """Bisection in rounds, until no target asks for a probe or ``max_probes`` is reached.

        Each round probes, together, the next resolution every unsettled target
        asks for (targets asking for the same one share it), so one round's probes
        run side by side on the workers. The rounds do not depend on the number
        of workers. Returns whether ``max_probes`` stopped it while a target still
        asked for a probe.
        """
        while True:
            wanted: list[float] = []
            for k in ordered:
                for gamma in self._next_probes(table, k, scale, tol):
                    if gamma not in table and gamma not in wanted:
                        wanted.append(gamma)
            if not wanted:
                return False
            if len(table) >= self.max_probes:
                return True
            self._probe_many(context, wanted[: self.max_probes - len(table)], table)

    def _bracket(self, table: dict[float, float], ordered: list[int], scale: _Scale, max_seen: float) -> SearchOutcome:
        """Each target's interval and hint from the probes, or the reason it has none."""
        outcome = SearchOutcome()
        for k in ordered:
            lo, hi, k_gammas = self._interval(table, k)
            if lo is None and hi is None:
                outcome.uncovered[k] = (
                    f"search: no probed resolution gave {k} or more clusters "
                    f"(largest median effective count seen: {max_seen:g})"
                )
            elif lo is None:
                outcome.uncovered[k] = (
                    f"search: even the smallest resolution ({min(table):g}) gave more than {k} "
                    "clusters (the graph has more components than the target)"
                )
            elif not k_gammas and _shatters(table, hi):
                outcome.uncovered[k] = (
                    f"search: no probed resolution gave {k} clusters (largest median effective count seen: "
                    f"{max_seen:g}); higher resolutions shatter the graph (most cells in clusters smaller "
                    "than min_cluster_size)"
                )
            else:
                outcome.intervals[k] = (lo, hi)
                if k_gammas:
                    outcome.hints[k] = scale.mid(k_gammas[0], k_gammas[-1])
        return outcome

    # -- the strategy -------------------------------------------------------
    def search(self, targets: np.ndarray, context) -> SearchOutcome:
        scale = _Scale(log=context.objective_function == "CPM")
        tol = float(context.resolution_tolerance)
        table: dict[float, float] = {}  # resolution -> median effective count
        ordered = sorted(int(t) for t in targets)
        capped = self._probe_bounds(context, table, scale, ordered[-1])
        finite = [c for c in table.values() if np.isfinite(c)]
        max_seen = max(finite) if finite else 0.0
        capped = capped or self._bisect(context, table, ordered, scale, tol)
        outcome = self._bracket(table, ordered, scale, max_seen)
        if capped:
            cap = f"searcher__max_probes={self.max_probes}"
            for k, reason in outcome.uncovered.items():
                outcome.uncovered[k] = f"{reason}; the search stopped at {cap}"
            warn_from_caller(
                f"The search stopped at {cap} before every target's interval was settled: the intervals are "
                f"coarser than asked and targets may be missing. Raise it, e.g. "
                f"searcher__max_probes={2 * self.max_probes}.",
                UserWarning,
            )
        outcome.probes = context.probe_frame()
        return outcome


class FixedResolutions(Searcher):
    """The no-search searcher: it probes nothing and brackets nothing.

    In manual resolution mode the estimator evaluates the given resolutions
    directly and never calls a searcher. Used in cluster-range mode, every target
    is reported uncovered (with that reason) and the fit returns no results.
    """

    def search(self, targets: np.ndarray, context) -> SearchOutcome:
        reason = "search: the 'fixed' searcher brackets no targets (use resolution= for manual mode)"
        return SearchOutcome(uncovered={int(k): reason for k in np.asarray(targets).tolist()})
