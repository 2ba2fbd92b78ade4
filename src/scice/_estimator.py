"""The SCICE estimator: parameters, sklearn plumbing and ``fit`` as a script over the fit's stages."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from ._assemble import assemble
from ._checkpoint import open_checkpoint
from ._cost import CostEstimate, estimate_cost
from ._fit import _Progress, log_start, open_runner, run_search, run_tasks
from ._logging import logger, progress_logging
from ._memory import check_run_memory
from ._params import PARAMS, doc_params
from ._plan import FAMILIES, make_plan, resolve_strategy
from ._results import SCICEResults
from ._timings import Timings
from ._warn import warn_from_caller
from .strategies._base import ICScorer, Optimizer, ParallelLayout, Searcher

__all__ = ["SCICE"]

_FITTED = ("results_", "labels_", "best_cluster_", "best_resolution_", "n_cells_")


@doc_params(**PARAMS)
class SCICE(ClusterMixin, BaseEstimator):
    """Clustering consistency of Leiden on a cell graph (scICE).

    Runs Leiden many times at many resolutions and measures how much the runs
    disagree with the inconsistency coefficient (IC): IC = 1 when every trial gives
    the same partition, larger when they disagree. Cluster counts with IC close to
    1 are reproducible.

    Parameters
    ----------
    {cluster_range}
    {resolution}
    {graph_key}
    {objective_function}
    {n_trials}
    {n_bootstrap}
    {n_iterations}
    {max_iterations}
    {beta}
    {ic_threshold}
    {remove_threshold}
    {min_cluster_size}
    {resolution_tolerance}
    {searcher}
    {optimizer}
    {scorer}
    {layout}
    {n_jobs}
    {random_state}
    {verbose}
    {checkpoint}
    {check_memory}

    Attributes
    ----------
    results_ : SCICEResults
        Every result, diagnostics and the resolved parallel layout.
    labels_ : ndarray of shape (n_cells,)
        ``best_labels`` of :attr:`best_cluster_` (``-1`` everywhere if no result).
    best_cluster_ : int or None
        The finest consistent count: the largest with IC below ``ic_threshold``;
        when none is consistent, the count with the lowest IC (ties: the smaller).
    best_resolution_ : float or None
        Resolution of :attr:`best_cluster_`.
    n_cells_ : int
        Number of cells of the fitted graph.

    Examples
    --------
    >>> import scanpy as sc, scice
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> est = scice.SCICE(cluster_range=(2, 10), random_state=0).fit(adata)
    >>> est.results_.consistent(threshold=1.005)  # doctest: +SKIP
    """

    def __init__(
        self,
        cluster_range: Any = None,
        resolution: Any = None,
        *,
        graph_key: str = "connectivities",
        objective_function: str = "CPM",
        n_trials: int = 15,
        n_bootstrap: int = 100,
        n_iterations: int = 10,
        max_iterations: int = 150,
        beta: float = 0.1,
        ic_threshold: float = 1.005,
        remove_threshold: float = 1.15,
        min_cluster_size: int = 2,
        resolution_tolerance: float = 1e-8,
        searcher: str | Searcher = "bisection",
        optimizer: str | Optimizer = "refine",
        scorer: str | ICScorer = "ecs",
        layout: str | ParallelLayout = "auto",
        n_jobs: int = 1,
        random_state: Any = None,
        verbose: bool | int = False,
        checkpoint: str | os.PathLike | None = None,
        check_memory: bool = True,
    ):
        self.cluster_range = cluster_range
        self.resolution = resolution
        self.graph_key = graph_key
        self.objective_function = objective_function
        self.n_trials = n_trials
        self.n_bootstrap = n_bootstrap
        self.n_iterations = n_iterations
        self.max_iterations = max_iterations
        self.beta = beta
        self.ic_threshold = ic_threshold
        self.remove_threshold = remove_threshold
        self.min_cluster_size = min_cluster_size
        self.resolution_tolerance = resolution_tolerance
        self.searcher = searcher
        self.optimizer = optimizer
        self.scorer = scorer
        self.layout = layout
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint
        self.check_memory = check_memory

    # ------------------------------------------------------------------
    # sklearn plumbing
    # ------------------------------------------------------------------
    def set_params(self, **params: Any) -> SCICE:
        """Set parameters; ``scorer__x=...`` works even when ``scorer`` is a name.

        A nested parameter of a strategy given by name first replaces the name with
        a new instance of that built-in. For ``layout="auto"`` that is
        ``"processes"``, the built-in layout with parameters, whatever ``n_jobs``
        is (with ``n_jobs=1`` it also runs everything in this process), so the
        outcome does not depend on the order of ``set_params`` calls.
        """
        for key in list(params):
            family, nested, _ = key.partition("__")
            if not nested or family not in FAMILIES:
                continue
            current = params.get(family, getattr(self, family))
            if isinstance(current, str):
                name = "processes" if family == "layout" and current == "auto" else current
                params[family] = resolve_strategy(name, family)
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.input_tags.pairwise = True  # X is a square cell x cell graph, not samples x features
        tags.input_tags.sparse = True
        return tags

    def fit(self, X: Any, y: None = None) -> SCICE:
        """Run scICE on a cell graph.

        Parameters
        ----------
        X : AnnData or scipy.sparse matrix of shape (n_cells, n_cells)
            An AnnData object (the graph is ``X.obsp[graph_key]``) or a square,
            symmetric, non-negative adjacency matrix. The input is never modified.
        y : None
            Ignored.

        Returns
        -------
        self : SCICE
            The fitted estimator.
        """
        with progress_logging(bool(self.verbose)):
            return self._fit(X)

    def fit_predict(self, X: Any, y: None = None) -> np.ndarray:
        """Run scICE on a cell graph and return :attr:`labels_`.

        Parameters
        ----------
        X : AnnData or scipy.sparse matrix of shape (n_cells, n_cells)
            As for :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        labels : ndarray of shape (n_cells,)
            ``best_labels`` of :attr:`best_cluster_` (``-1`` everywhere if no result).
        """
        return self.fit(X, y).labels_

    def estimate_cost(self, X: Any) -> CostEstimate:
        """What :meth:`fit` on ``X`` would cost: Leiden calls, wall time and memory.

        Checks the parameters and the graph exactly as :meth:`fit` does (the same
        errors), times a few real Leiden calls on the graph in this process (the
        search's upper-bound doubling and bisection with one trial per resolution,
        two grid-style trials per target and three refinement rounds of those two:
        a small fraction of a fit) and multiplies them by the method's call plan.
        ``seconds`` is the expected wall time, ``seconds_max`` the worst case
        (every target runs its whole grid and, with ``"refine"``, every candidate
        is refined to ``max_iterations``; with ``"converge"``, run once to
        convergence; ``CostEstimate.worst_case`` says which); how much refinement
        a graph needs is known only once it runs, so expect the real time within
        about a factor of 2 of ``seconds``. Nothing is fitted and the estimator is
        not changed.

        Parameters
        ----------
        X : AnnData or scipy.sparse matrix of shape (n_cells, n_cells)
            The graph :meth:`fit` would get.

        Returns
        -------
        CostEstimate
            Expected ``leiden_calls``, ``seconds``, ``seconds_max``, ``memory_bytes``
            (this process plus every worker), ``per_worker_bytes`` and the ``layout``
            assumed; ``print(est.estimate_cost(X))`` shows them.

        Examples
        --------
        >>> import scanpy as sc, scice
        >>> adata = sc.datasets.pbmc68k_reduced()
        >>> cost = scice.SCICE(cluster_range=(2, 10)).estimate_cost(adata)
        >>> print(cost)  # doctest: +SKIP
        """
        graph, plan = make_plan(self, X)
        return estimate_cost(graph, plan)

    def _fit(self, X: Any) -> SCICE:
        timings = Timings()
        # A failed or interrupted fit must not leave an earlier fit's results behind.
        for attr in _FITTED:
            self.__dict__.pop(attr, None)
        graph, plan = make_plan(self, X)
        if plan.check_memory:
            check_run_memory(graph, plan)
        ckpt = open_checkpoint(graph, plan)
        log_start(graph, plan)
        if plan.verbose:
            logger.info("%s", estimate_cost(graph, plan).describe())
        # one progress bar for the whole fit, counted in Leiden calls (search included)
        with _Progress(plan.verbose, ckpt) as progress, open_runner(graph, plan, progress) as runner:
            search, tasks = run_search(plan, runner, ckpt, timings, progress)
            outcomes = run_tasks(graph, plan, runner, tasks, search, ckpt, timings, progress)
            timings.add_runner(runner.stats())  # Leiden work of this fit only (the search included)
            timings.finish(plan.layout_info.pool_workers)
        self._set_results(assemble(plan, graph, search, outcomes, timings.as_dict()), graph.n_vertices)
        if plan.verbose:
            reread = timings.n_trial_sets_resumed
            logger.info(
                "scice: done in %.2f s; counts %s, best %s%s",
                timings.total_seconds,
                self.results_.n_cluster.tolist(),
                self.best_cluster_,
                f" ({reread} trial sets read back from the checkpoint)" if reread else "",
            )
        return self

    def _set_results(self, results: SCICEResults, n_cells: int) -> None:
        self.results_ = results
        self.n_cells_ = n_cells
        best = results.best
        if best is None:
            warn_from_caller(
                "No cluster count could be evaluated; see results_.uncovered_targets (cluster-range mode) or "
                "results_.resolution_diagnostics (manual mode) for the reasons. "
                "labels_ is -1 for every cell.",
                UserWarning,
            )
            self.labels_ = np.full(n_cells, -1, dtype=np.int64)
            self.best_cluster_ = None
            self.best_resolution_ = None
        else:
            self.labels_ = np.asarray(best.best_labels)
            self.best_cluster_ = best.n_cluster
            self.best_resolution_ = best.gamma
