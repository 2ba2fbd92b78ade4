"""The fit plan: every checked parameter and derived value a fit uses.

:func:`check_params` checks an estimator's parameters without a graph (and its
targets, given the number of cells); :func:`make_plan` reads the graph and adds
what depends on it: the targets or resolutions, the seeds, the resolved
strategies and the parallel layout. Both check in the same order with the same
messages, so a caller that checks early (the command line, before hours of
compute) reports exactly what :meth:`~scice.SCICE.fit` would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import joblib
import numpy as np
from sklearn.base import clone

from . import _validation as V
from ._context import RunSeeds
from ._graph import GraphData, graph_from_input, weight_scale
from ._leiden import LeidenConfig
from ._memory import WORKER_BASELINE_BYTES, format_bytes, local_cores
from ._warn import warn_from_caller
from .strategies import LAYOUTS, OPTIMIZERS, SCORERS, SEARCHERS
from .strategies._base import ICScorer, LayoutInfo, Optimizer, ParallelLayout, Searcher

if TYPE_CHECKING:
    from ._estimator import SCICE

__all__ = ["FAMILIES", "FitPlan", "MethodParams", "Strategies", "check_params", "make_plan", "resolve_strategy"]

_OBJECTIVES = {"cpm": "CPM", "modularity": "modularity"}

# strategy parameter -> (base class, registry of built-ins by name)
FAMILIES = {
    "searcher": (Searcher, SEARCHERS),
    "optimizer": (Optimizer, OPTIMIZERS),
    "scorer": (ICScorer, SCORERS),
    "layout": (ParallelLayout, LAYOUTS),
}

# Method parameters that cannot change results: left out of a checkpoint's fingerprint.
_NOT_FINGERPRINTED = ("n_jobs", "check_memory")


class Strategies(NamedTuple):
    """The fit's own strategy instances (built-ins by name are new, given instances cloned)."""

    searcher: Searcher
    optimizer: Optimizer
    scorer: ICScorer
    layout: ParallelLayout


@dataclass(frozen=True, eq=False)
class MethodParams:
    """The estimator's method parameters, checked and normalised.

    ``mode`` is ``"cluster_range"`` or ``"resolution"``, ``objective`` is
    ``"CPM"`` or ``"modularity"`` and ``n_jobs`` is the effective number of
    workers (``-1`` resolved to the number of cores).
    """

    mode: str
    objective: str
    n_trials: int
    n_bootstrap: int
    n_iterations: int
    max_iterations: int
    beta: float
    ic_threshold: float
    remove_threshold: float
    min_cluster_size: int
    resolution_tolerance: float
    n_jobs: int
    check_memory: bool

    def fingerprint_params(self) -> dict[str, Any]:
        """The parameters a checkpoint's fingerprint records: every one that can change results."""
        return {f.name: getattr(self, f.name) for f in fields(MethodParams) if f.name not in _NOT_FINGERPRINTED}


@dataclass(frozen=True, eq=False)
class FitPlan(MethodParams):
    """Everything one fit uses: the checked parameters plus what the graph decides.

    Exactly one of ``targets`` (sorted unique cluster counts, cluster-range mode)
    and ``resolutions`` (manual mode, input order) is set. ``random_state``,
    ``graph_key`` and ``checkpoint`` are the estimator's values as given (they are
    recorded or checked later); ``seeds`` were drawn from ``random_state``.
    """

    graph_key: str
    random_state: Any
    verbose: bool
    checkpoint: str | os.PathLike | None
    targets: np.ndarray | None
    resolutions: np.ndarray | None
    seeds: RunSeeds
    leiden: LeidenConfig
    strategies: Strategies
    layout_info: LayoutInfo

    @property
    def n_tasks(self) -> int:
        """Targets (cluster-range mode) or resolutions (manual mode) to evaluate."""
        return len(self.targets) if self.targets is not None else len(self.resolutions)


def resolve_strategy(value: Any, name: str) -> Any:
    """A new instance of the built-in named ``value``, or a clone of the instance ``value``."""
    base, registry = FAMILIES[name]
    if isinstance(value, str):
        if value not in registry:
            options = ", ".join(repr(k) for k in registry)
            raise ValueError(f"Unknown {name} {value!r}; choose one of {options} or pass a {base.__name__} instance.")
        return registry[value]()
    if isinstance(value, base):
        return clone(value)
    raise TypeError(
        f"{name} must be the name of a built-in ({', '.join(registry)}) or a {base.__name__} instance, "
        f"got {type(value).__name__}."
    )


def check_params(estimator: SCICE, n_cells: int | None = None) -> MethodParams:
    """Check an estimator's parameters without a graph, as :meth:`~scice.SCICE.fit` does.

    Checks the method parameters, the strategies, the targets or resolutions
    (only when ``n_cells`` is given: targets must lie in ``[2, n_cells]``) and
    ``random_state``, in the order and with the messages of a fit. The
    estimator is not changed.

    Parameters
    ----------
    estimator : SCICE
        The estimator whose parameters to check.
    n_cells : int, optional
        Number of cells of the graph it will fit.

    Returns
    -------
    MethodParams
        The checked method parameters.

    Raises
    ------
    ValueError, TypeError
        For the first parameter that fails.
    """
    params = _check_method_params(estimator)
    _resolve_strategies(estimator, params.n_jobs)
    if n_cells is not None:
        _check_targets(estimator, params.mode, n_cells)
        _check_min_cluster_size(params.min_cluster_size, n_cells)
    V.check_random_state_param(estimator.random_state)
    return params


def make_plan(estimator: SCICE, X: Any) -> tuple[GraphData, FitPlan]:
    """Check the estimator's parameters, read the graph ``X`` and plan the fit.

    The checks run in a fixed order (method parameters, graph, strategies,
    targets or resolutions, ``random_state``); the first that fails raises.

    Returns
    -------
    graph : GraphData
        The validated graph.
    plan : FitPlan
        Everything the fit uses.
    """
    params = _check_method_params(estimator)
    graph = graph_from_input(X, estimator.graph_key)
    strategies = _resolve_strategies(estimator, params.n_jobs)
    targets, resolutions = _check_targets(estimator, params.mode, graph.n_vertices)
    _check_min_cluster_size(params.min_cluster_size, graph.n_vertices)
    _warn_isolated(graph)
    seeds = RunSeeds.draw(V.random_state_rng(estimator.random_state), params.n_trials)
    n_tasks = len(targets) if targets is not None else len(resolutions)
    layout_info = strategies.layout.resolve(params.n_jobs, n_tasks, graph.n_vertices, graph.n_edges)
    _warn_cores(layout_info)
    plan = FitPlan(
        **{f.name: getattr(params, f.name) for f in fields(MethodParams)},
        graph_key=estimator.graph_key,
        random_state=estimator.random_state,
        verbose=bool(estimator.verbose),
        checkpoint=estimator.checkpoint,
        targets=targets,
        resolutions=resolutions,
        seeds=seeds,
        leiden=LeidenConfig(
            objective_function=params.objective,
            min_cluster_size=params.min_cluster_size,
            weight_scale=weight_scale(graph, params.objective),
        ),
        strategies=strategies,
        layout_info=layout_info,
    )
    return graph, plan


def _check_method_params(est: SCICE) -> MethodParams:
    mode = V.check_mode(est.cluster_range, est.resolution)
    objective = est.objective_function
    if not isinstance(objective, str) or objective.lower() not in _OBJECTIVES:
        raise ValueError(f"objective_function must be 'CPM' or 'modularity', got {objective!r}.")
    if not isinstance(est.graph_key, str):
        raise TypeError(f"graph_key must be a string naming a key of adata.obsp, got {est.graph_key!r}.")
    n_jobs = V.check_int(est.n_jobs, "n_jobs")
    if n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs}.")
    return MethodParams(
        mode=mode,
        objective=_OBJECTIVES[objective.lower()],
        n_trials=V.check_n_trials(est.n_trials),
        n_bootstrap=V.check_int(est.n_bootstrap, "n_bootstrap", min_value=1),
        n_iterations=V.check_int(est.n_iterations, "n_iterations", min_value=1),
        max_iterations=V.check_int(est.max_iterations, "max_iterations", min_value=0),
        beta=V.check_real(est.beta, "beta", min_value=0.0, min_inclusive=False),
        ic_threshold=V.check_real(est.ic_threshold, "ic_threshold", min_value=1.0, allow_inf=True),
        remove_threshold=V.check_real(est.remove_threshold, "remove_threshold", min_value=1.0, allow_inf=True),
        min_cluster_size=V.check_int(est.min_cluster_size, "min_cluster_size", min_value=1),
        resolution_tolerance=V.check_real(
            est.resolution_tolerance, "resolution_tolerance", min_value=0.0, min_inclusive=False
        ),
        n_jobs=int(joblib.effective_n_jobs(n_jobs)),
        check_memory=bool(est.check_memory),
    )


def _resolve_strategies(est: SCICE, n_jobs: int) -> Strategies:
    """The fit's strategies; ``layout="auto"`` is ``"serial"`` for one (effective) job, else ``"processes"``."""
    layout = est.layout
    if isinstance(layout, str) and layout == "auto":
        layout = "serial" if n_jobs == 1 else "processes"
    return Strategies(
        searcher=resolve_strategy(est.searcher, "searcher"),
        optimizer=resolve_strategy(est.optimizer, "optimizer"),
        scorer=resolve_strategy(est.scorer, "scorer"),
        layout=resolve_strategy(layout, "layout"),
    )


def _warn_isolated(graph: GraphData) -> None:
    n_isolated = int(graph.isolated.sum())
    if n_isolated:
        warn_from_caller(
            f"{n_isolated} of {graph.n_vertices} cells have no edges in the graph (isolated cells): Leiden cannot "
            "place them, so they join the largest cluster in best_labels and their per-cell consistency (mei) "
            "is NaN; scice.tl.scice marks them in obs['<key_added>_isolated'], get_robust_labels in its "
            "'scICE_isolated' column.",
            UserWarning,
        )


#: Backends whose workers are processes (or threads) of this machine.
_LOCAL_BACKENDS = ("loky", "multiprocessing", "threading")


def _warn_cores(info: LayoutInfo) -> None:
    """Warn when more local worker processes would start than this process has cores.

    Only for backends that run on this machine; a dask or ray cluster's workers
    have cores of their own.
    """
    cores = local_cores()
    if info.pool_workers > cores and info.backend in _LOCAL_BACKENDS:
        warn_from_caller(
            f"n_jobs={info.n_workers} is more than the {cores} CPU core(s) this process may use "
            f"(os.sched_getaffinity and the CPU quota, as joblib.cpu_count() counts them): the extra worker "
            f"processes share those cores, so the fit is no faster, and each costs memory (about "
            f"{format_bytes(WORKER_BASELINE_BYTES)} plus its copy of the graph). Use n_jobs={cores} or n_jobs=-1.",
            UserWarning,
        )


def _check_min_cluster_size(min_cluster_size: int, n_cells: int) -> None:
    if min_cluster_size > n_cells:
        raise ValueError(
            f"min_cluster_size={min_cluster_size} is larger than the number of cells ({n_cells}): every "
            f"cluster would be merged away. Use a value of at most {max(n_cells // 2, 1)} (default 2)."
        )


def _check_targets(est: SCICE, mode: str, n_cells: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(targets, None)`` in cluster-range mode, ``(None, resolutions)`` in manual mode."""
    if mode == "cluster_range":
        return V.check_cluster_range(est.cluster_range, n_cells), None
    return None, V.check_resolution(est.resolution)
