"""What a fit will cost, before it runs: Leiden calls, seconds and memory.

:func:`estimate_cost` runs a *sounding* in this process, a miniature of the fit
with one or two trials per resolution (a few % of a fit's calls), and
multiplies the time of its Leiden calls by the method's call plan:

- *search*: ``n_probe_trials`` calls per probe; the probes are the upper-bound
  doubling (the sounding doubles exactly as the searcher does) plus
  :data:`PROBES_PER_TARGET` bisection probes per target;
- *grid*: the sounding bisects (one trial per resolution) to a resolution where
  each target's count appears and runs two grid-style trials there. When they
  agree the target is taken as consistent: the grid, which starts where the
  search saw the target, stops at its first resolution (one trial set).
  Otherwise the whole grid runs (``n_steps`` trial sets), and also when the
  sounding found no resolution with that count;
- *refinement* of the targets whose two trials disagreed: the published
  schedule refines :data:`CANDIDATE_FRACTION` of the grid for
  :data:`TYPICAL_ROUNDS` rounds (at most the rounds ``max_iterations`` allows)
  of ``n_trials`` calls of ``refine_iterations``; ``"converge"`` runs
  :data:`CONVERGE_CANDIDATE_FRACTION` of the grid once, to convergence. The
  worst case, ``seconds_max``, refines every grid resolution of every target
  until ``max_iterations``.

Seconds per call are measured per kind (search-style, grid-style and
:data:`_REFINE_ROUNDS` refinement rounds continuing grid labels), as medians.
The work is divided over the worker processes that can run at once
(``min(pool workers, cores)``) with a parallel efficiency of
:data:`PARALLEL_EFFICIENCY`. The constants were calibrated on full fits
(``benchmarks/estimate_cost.py``; docs/design.md gives the data).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._context import SearchContext
from ._leiden import TrialRunner
from ._memory import format_bytes, local_cores, plan_run_bytes
from .strategies._base import LayoutInfo
from .strategies._optimize import CONVERGE, ConvergeOptimizer, GridOptimizer, RefineOptimizer
from .strategies._search import BisectionSearcher

if TYPE_CHECKING:
    from ._graph import GraphData
    from ._plan import FitPlan

__all__ = ["CostEstimate", "estimate_cost"]

#: Bisection probes per target beyond the upper-bound doubling (pbmc68k_reduced: 5.2,
#: digits: 4.6, range 2..10; Gaussian mixtures 10k-50k, range 2..15: 5-6).
PROBES_PER_TARGET = 6.0
#: Share of the grid that are candidates in a refined target's rounds, on average
#: over the rounds (the published schedule prunes from round 10 on). Calibrated on
#: the calls of whole fits (pbmc68k_reduced, digits, a 20k Gaussian mixture): the
#: sounding also calls "refined" targets that the fit finds consistent or without
#: a candidate, so this is below the 0.55-0.66 of the targets really refined
#: (their trial sets over their rounds, per grid step: digits, pbmc68k_reduced).
CANDIDATE_FRACTION = 0.5
#: Rounds a refined target runs: the mean (16.3) over pbmc68k_reduced (23, 4, 1),
#: digits (2, 19, 14, 41; both range 2..10) and a 50k Gaussian mixture (range 2..15:
#: 19, 16, 21, 23, 18, 16, 19, 1, 15, 25).
TYPICAL_ROUNDS = 16
#: Share of the grid that are candidates (median count = the target) of a target
#: without an IC-1 resolution: ``"converge"`` runs each once (pbmc68k_reduced 0.88, digits 0.88).
CONVERGE_CANDIDATE_FRACTION = 0.88
#: Speed-up per extra worker process running at once (dispatch, chunk imbalance).
PARALLEL_EFFICIENCY = 0.75
#: Time outside Leiden (scoring, bootstrap, bookkeeping) as a share of Leiden's.
OVERHEAD_FRACTION = 0.05
#: Starting the worker pool, per worker started (seconds).
POOL_START_SECONDS = 0.5
#: The sounding (:class:`_Sounding`): at most this many upper-bound doublings and
#: bisection steps per target, and this many grid-style trials per target.
_MAX_DOUBLINGS = 24
_MAX_BISECTIONS = 6
_GRID_TRIALS = 2
#: Refinement rounds the sounding times, each continuing the last (one for
#: ``"converge"``): refinement is most of a large fit's calls, so its time per
#: call is the median of several rounds rather than one.
_REFINE_ROUNDS = 3


@dataclass(frozen=True)
class CostEstimate:
    """What a fit is expected to cost (:meth:`scice.SCICE.estimate_cost`).

    Attributes
    ----------
    leiden_calls : int
        Expected Leiden calls (search probes, grid and refinement trials).
    seconds : float
        Expected wall time.
    seconds_max : float
        Wall time if refinement goes to the end: every grid resolution of every
        target is a candidate refined until ``max_iterations`` (manual mode and
        ``optimizer="grid"``: the whole grid, no refinement).
    memory_bytes : int
        Peak memory of this process plus every worker process.
    per_worker_bytes : int
        Peak memory of one worker process: its baseline (the interpreter with numpy
        and igraph), its copy of the graph and one chunk of labels (0 without workers).
    parent_bytes : int
        Peak memory of this process.
    layout : LayoutInfo
        The parallel layout the estimate assumed (as in ``results_.parallel_layout``).
    parallel_workers : int
        Worker processes that can run at once: ``min(pool workers, cores)`` (1 when serial).
    search_calls, grid_calls, refine_calls : int
        The expected Leiden calls by stage.
    call_seconds : dict of str to float
        Seconds per Leiden call on this graph, the median over the timed calls of
        each kind: ``"search"``, ``"grid"``, ``"refine"`` (a kind not timed, such
        as the search in manual mode, holds the grid's).
    timing_seconds : float
        Wall time this estimate took (its timing calls).
    n_cells, n_edges : int
        The graph's size.
    timing_calls : dict of str to int
        The Leiden calls this estimate ran to time them, by kind (as ``call_seconds``).
    worst_case : str
        What ``seconds_max`` assumes, in words ("" when it equals ``seconds``).
    """

    leiden_calls: int
    seconds: float
    seconds_max: float
    memory_bytes: int
    per_worker_bytes: int
    parent_bytes: int
    layout: LayoutInfo
    parallel_workers: int
    search_calls: int
    grid_calls: int
    refine_calls: int
    call_seconds: dict[str, float]
    timing_seconds: float
    n_cells: int
    n_edges: int
    timing_calls: dict[str, int]
    worst_case: str

    def describe(self) -> str:
        """A few lines for people: calls, time (expected and worst case), memory and layout."""
        info = self.layout
        workers = (
            f"{info.pool_workers} worker process(es), {self.parallel_workers} at once"
            if info.pool_workers
            else "this process only"
        )
        on_workers = (
            f" + {info.pool_workers} x {format_bytes(self.per_worker_bytes)} per worker" if info.pool_workers else ""
        )
        expected = {"search": self.search_calls, "grid": self.grid_calls, "refine": self.refine_calls}
        shown = {k: v for k, v in self.call_seconds.items() if expected.get(k, 1) or self.timing_calls.get(k)}
        per_call = ", ".join(f"{k} {_per_call(v)}" for k, v in shown.items())
        worst = f" (at most {_duration(self.seconds_max)} if {self.worst_case})" if self.worst_case else ""
        lines = [
            f"scice cost estimate: {self.n_cells} cells, {self.n_edges} edges; {info.layout} layout, {workers}",
            f"  Leiden calls: about {self.leiden_calls:,} (search {self.search_calls:,}, grid {self.grid_calls:,}, "
            f"refinement {self.refine_calls:,}); per call: {per_call}",
            f"  wall time: about {_duration(self.seconds)}{worst}",
            f"  memory: about {format_bytes(self.memory_bytes)} in all (this process "
            f"{format_bytes(self.parent_bytes)}{on_workers})",
            f"  (estimated in {self.timing_seconds:.2f} s from {sum(self.timing_calls.values())} real Leiden calls "
            "on this graph)",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"12.5 min"``, ``"3.2 h"``."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _per_call(seconds: float) -> str:
    """``"3.17 ms"`` below a second, ``"228 s"`` above."""
    return f"{seconds * 1e3:.3g} ms" if seconds < 0.9995 else f"{seconds:.3g} s"


class _Timer:
    """Leiden calls in this process, timed per call (no cache, so every call runs)."""

    def __init__(self, graph: GraphData, plan: FitPlan):
        self.runner = TrialRunner(graph, plan.leiden, cache_bytes=0)
        self.samples: dict[str, list[float]] = {"search": [], "grid": [], "refine": []}
        self.calls: dict[str, int] = dict.fromkeys(self.samples, 0)

    def call(self, kind: str, gamma: float, seeds: np.ndarray, n_iterations: int, beta: float, start: Any = None):
        """One trial per seed at ``gamma`` (continuing ``start``'s labels); its time is a sample of ``kind``."""
        before = self.runner.leiden_seconds
        trial_set = self.runner.run(gamma, seeds, n_iterations, beta, start)
        self.samples[kind].append((self.runner.leiden_seconds - before) / trial_set.n_trials)
        self.calls[kind] += trial_set.n_trials
        return trial_set

    def per_call(self, kind: str, fallback: float) -> float:
        """Median seconds per call of ``kind`` (``fallback`` when none ran)."""
        values = self.samples[kind]
        return float(np.median(values)) if values else fallback  # robust to a call slowed by the machine


def _search_params(searcher: Any) -> tuple[int, int, float]:
    """``(n_probe_trials, probe_iterations, probe_beta)`` of the searcher (the bisection defaults otherwise)."""
    default = BisectionSearcher()
    return tuple(
        getattr(searcher, name, getattr(default, name)) for name in ("n_probe_trials", "probe_iterations", "probe_beta")
    )  # type: ignore[return-value]


class _Sounding:
    """A miniature of the search and the grid, one or two trials per resolution.

    Doubles the upper bound exactly as the searcher does, then, per target,
    bisects (one search-style trial per resolution, at most
    :data:`_MAX_BISECTIONS` per target) to a resolution whose count is the
    target and runs :data:`_GRID_TRIALS` grid-style trials there: when they agree
    the target is likely consistent (the grid stops at its first resolution),
    otherwise it will likely be refined.
    """

    def __init__(self, timer: _Timer, plan: FitPlan, graph: GraphData):
        self.timer, self.plan, self.graph = timer, plan, graph
        _, self.iterations, self.beta = _search_params(plan.strategies.searcher)
        self.seed = plan.seeds.probe[:1]
        self.table: dict[float, float] = {}  # resolution -> count of one trial
        self.cpm = plan.objective == "CPM"

    def count(self, gamma: float) -> float:
        if gamma not in self.table:
            trial_set = self.timer.call("search", gamma, self.seed, self.iterations, self.beta)
            self.table[gamma] = float(trial_set.median_count)
        return self.table[gamma]

    def doubling(self) -> int:
        """Probe the lower bound and double the upper one; the probes it took."""
        searcher = self.plan.strategies.searcher
        if self.cpm:
            bounds = searcher if isinstance(searcher, BisectionSearcher) else BisectionSearcher()
            context = SearchContext(self.timer.runner, self.plan.strategies.scorer, self.plan.seeds, 1.0)
            lower, upper = bounds._cpm_bounds(context)
        else:
            lower, upper = 0.0, 1.0
        hi = int(self.plan.targets.max())
        self.count(lower)
        for _ in range(_MAX_DOUBLINGS):
            count = self.count(upper)
            if count > hi or count == 0 or count >= self.graph.n_vertices:
                break
            upper *= 2.0
        return len(self.table)

    def find(self, k: int) -> float | None:
        """A resolution whose one-trial count is ``k`` (bisecting the probes so far), or ``None``."""
        for _ in range(_MAX_BISECTIONS + 1):
            gammas = sorted(self.table)
            counts = [self.table[g] for g in gammas]
            exact = [g for g, c in zip(gammas, counts, strict=True) if c == k]
            if exact:
                return exact[0]
            above = [i for i, c in enumerate(counts) if c > k]
            if not above or above[0] == 0:
                return None
            a, b = gammas[above[0] - 1], gammas[above[0]]
            mid = math.sqrt(a * b) if self.cpm and a > 0 else 0.5 * (a + b)
            self.count(mid)
        return None

    def classify(self, k: int) -> tuple[str, Any]:
        """``"consistent"``, ``"refined"`` or ``"missing"`` for target ``k``, and its grid-style trial set."""
        gamma = self.find(k)
        if gamma is None:
            return "missing", None
        plan = self.plan
        trial_set = self.timer.call("grid", gamma, plan.seeds.trials[:_GRID_TRIALS], plan.n_iterations, plan.beta)
        agree = plan.strategies.scorer.score(trial_set.labelings).ic <= 1.0
        return ("consistent" if agree and trial_set.median_count == k else "refined"), trial_set


def _refinement(plan: FitPlan) -> tuple[int, float, int]:
    """How the optimizer refines a target without an IC-1 grid resolution.

    ``(iterations per call, expected candidate rounds per grid resolution, most
    rounds)``: the published schedule (and unknown optimizers, assumed to cost
    like it) runs rounds of ``refine_iterations``; ``"converge"`` one call to
    convergence per candidate; ``"grid"`` nothing.
    """
    optimizer = plan.strategies.optimizer
    if isinstance(optimizer, ConvergeOptimizer):
        return CONVERGE, CONVERGE_CANDIDATE_FRACTION, 1
    if isinstance(optimizer, GridOptimizer) and not isinstance(optimizer, RefineOptimizer):
        return 0, 0.0, 0
    step = int(getattr(optimizer, "refine_iterations", 2)) or 1
    most = max(0, math.ceil((plan.max_iterations - plan.n_iterations) / step))
    return step, CANDIDATE_FRACTION * min(TYPICAL_ROUNDS, most), most


def _cluster_range_sets(timer: _Timer, plan: FitPlan, graph: GraphData) -> dict[str, float]:
    """Expected probes and trial sets per stage in cluster-range mode, and the worst case."""
    n_steps = int(getattr(plan.strategies.optimizer, "n_steps", 11))
    step, rounds, max_rounds = _refinement(plan)
    sounding = _Sounding(timer, plan, graph)
    n_doubling = sounding.doubling()
    kinds, refine_from = [], None
    for k in sorted(int(t) for t in plan.targets):
        kind, trial_set = sounding.classify(k)
        kinds.append(kind)
        if kind == "refined" and refine_from is None:
            refine_from = trial_set
        elif trial_set is not None and refine_from is None and k == int(plan.targets.max()):
            refine_from = trial_set
    trial_set, rounds_timed = refine_from, min(_REFINE_ROUNDS, max_rounds) if refine_from is not None else 0
    for round_index in range(1, rounds_timed + 1):
        seeds = plan.seeds.refine_seeds(round_index, trial_set.n_trials)
        trial_set = timer.call("refine", trial_set.gamma, seeds, step, plan.beta, trial_set)
    n_refined = kinds.count("refined")
    return {
        "probes": n_doubling + PROBES_PER_TARGET * len(kinds),
        "grid": kinds.count("consistent") + (n_refined + kinds.count("missing")) * n_steps,
        "refine": n_refined * n_steps * rounds,
        "grid_max": len(kinds) * n_steps,
        "refine_max": len(kinds) * n_steps * max_rounds,
    }


def _worst_case(plan: FitPlan, sets: dict[str, float]) -> str:
    """What ``seconds_max`` assumes, in words ("" when nothing can run beyond the expected calls)."""
    if sets["grid_max"] <= sets["grid"] and sets["refine_max"] <= sets["refine"]:
        return ""
    if not sets["refine_max"]:
        return "every target runs its whole grid"
    if isinstance(plan.strategies.optimizer, ConvergeOptimizer):
        return "every grid resolution of every target runs to convergence"
    return "every grid resolution of every target refines to max_iterations"


def estimate_cost(graph: GraphData, plan: FitPlan) -> CostEstimate:
    """The expected cost of fitting ``plan`` on ``graph`` (see the module docstring)."""
    t0 = time.perf_counter()
    timer = _Timer(graph, plan)
    n_probe_trials, _, _ = _search_params(plan.strategies.searcher)
    if plan.targets is not None:
        sets = _cluster_range_sets(timer, plan, graph)
    else:
        gammas = np.unique(plan.resolutions)
        for gamma in gammas[[0, -1]] if gammas.size > 1 else gammas:
            timer.call("grid", float(gamma), plan.seeds.trials[:1], plan.n_iterations, plan.beta)
        n = float(plan.n_tasks)
        sets = {"probes": 0.0, "grid": n, "refine": 0.0, "grid_max": n, "refine_max": 0.0}
    t_grid = timer.per_call("grid", 0.0)
    per_call = {
        "search": timer.per_call("search", t_grid),
        "grid": t_grid,
        "refine": timer.per_call("refine", t_grid),
    }
    search_calls = sets["probes"] * n_probe_trials
    grid_calls, refine_calls = sets["grid"] * plan.n_trials, sets["refine"] * plan.n_trials
    search_work = search_calls * per_call["search"]
    work = search_work + grid_calls * per_call["grid"] + refine_calls * per_call["refine"]
    work_max = (
        search_work
        + sets["grid_max"] * plan.n_trials * per_call["grid"]
        + sets["refine_max"] * plan.n_trials * per_call["refine"]
    )
    info = plan.layout_info
    at_once = max(1, min(info.pool_workers, local_cores())) if info.pool_workers else 1
    speedup = 1.0 + (at_once - 1) * PARALLEL_EFFICIENCY
    start = POOL_START_SECONDS * at_once if info.pool_workers else 0.0

    def wall(leiden_seconds: float) -> float:
        return leiden_seconds * (1 + OVERHEAD_FRACTION) / speedup + start

    memory = plan_run_bytes(graph, plan)
    return CostEstimate(
        leiden_calls=int(round(search_calls + grid_calls + refine_calls)),
        seconds=float(wall(work)),
        seconds_max=float(wall(work_max)),
        memory_bytes=memory["total"],
        per_worker_bytes=memory["per_worker"],
        parent_bytes=memory["parent"],
        layout=info,
        parallel_workers=at_once,
        search_calls=int(round(search_calls)),
        grid_calls=int(round(grid_calls)),
        refine_calls=int(round(refine_calls)),
        call_seconds=per_call,
        timing_seconds=time.perf_counter() - t0,
        n_cells=graph.n_vertices,
        n_edges=graph.n_edges,
        timing_calls=dict(timer.calls),
        worst_case=_worst_case(plan, sets),
    )
