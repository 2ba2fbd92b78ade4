"""The SCICE estimator: parameters, validation, strategy resolution, fit."""

from __future__ import annotations

import copy
import dataclasses
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.utils import check_random_state

from . import _validation as V
from ._checkpoint import Checkpoint, run_fingerprint
from ._context import RunSeeds, SearchContext
from ._graph import GraphData, graph_from_input
from ._leiden import LeidenConfig, TrialRunner, WorkerError
from ._logging import logger, progress_logging
from ._memory import available_memory, estimate_run_bytes, format_bytes
from ._params import PARAMS, doc_params
from ._pipeline import RunSpec, TaskFailedError, TaskResult, describe_task, evaluate_task
from ._results import SCICEResults
from .strategies import LAYOUTS, OPTIMIZERS, SCORERS, SEARCHERS
from .strategies._base import ICScorer, Optimizer, ParallelLayout, Searcher, Task

__all__ = ["SCICE"]


_OBJECTIVES = {"cpm": "CPM", "modularity": "modularity"}
_FAMILIES = {
    "searcher": (Searcher, SEARCHERS),
    "optimizer": (Optimizer, OPTIMIZERS),
    "scorer": (ICScorer, SCORERS),
    "layout": (ParallelLayout, LAYOUTS),
}


def _resolve_strategy(value: Any, name: str) -> Any:
    """A string names a built-in (new instance); an instance is cloned."""
    base, registry = _FAMILIES[name]
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


def _dispatch_order(tasks: list[Task], probes: pd.DataFrame | None) -> list[int]:
    """Order in which to hand tasks to workers: the likely slowest first.

    Only the wall time depends on it (results are put back in task order). A
    target whose search probes all disagreed (the lowest probe IC over its closed
    interval is above 1) will probably need refinement, the long part of a run,
    so it starts first.
    """
    if probes is None or probes.empty or "ic" not in probes:
        return list(range(len(tasks)))
    gammas, ics = probes["gamma"].to_numpy(), probes["ic"].to_numpy()

    def cost(i: int) -> float:
        t = tasks[i]
        if t.lower is None or t.upper is None:
            return 0.0
        inside = (gammas >= t.lower) & (gammas <= t.upper)
        return float(ics[inside].min()) if inside.any() else 0.0

    return sorted(range(len(tasks)), key=lambda i: -cost(i))


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
        Cluster count with the lowest IC (ties: the smaller count).
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
        ic_threshold: float = float("inf"),
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
        a new instance of that built-in.
        """
        for key in list(params):
            if "__" not in key:
                continue
            family = key.split("__", 1)[0]
            if family in _FAMILIES:
                current = params.get(family, getattr(self, family))
                if isinstance(current, str):
                    if family == "layout" and current == "auto":
                        n_jobs = params.get("n_jobs", self.n_jobs)
                        current = "serial" if n_jobs == 1 else "processes"
                    params[family] = _resolve_strategy(current, family)
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------
    # validation
    # ------------------------------------------------------------------
    def _check_params(self) -> dict[str, Any]:
        mode = V.check_mode(self.cluster_range, self.resolution)
        objective = self.objective_function
        if not isinstance(objective, str) or objective.lower() not in _OBJECTIVES:
            raise ValueError(f"objective_function must be 'CPM' or 'modularity', got {objective!r}.")
        if not isinstance(self.graph_key, str):
            raise TypeError(f"graph_key must be a string naming a key of adata.obsp, got {self.graph_key!r}.")
        n_jobs = V.check_int(self.n_jobs, "n_jobs")
        if n_jobs == 0 or n_jobs < -1:
            raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs}.")
        return {
            "mode": mode,
            "objective": _OBJECTIVES[objective.lower()],
            "n_trials": V.check_int(self.n_trials, "n_trials", min_value=1),
            "n_bootstrap": V.check_int(self.n_bootstrap, "n_bootstrap", min_value=1),
            "n_iterations": V.check_int(self.n_iterations, "n_iterations", min_value=1),
            "max_iterations": V.check_int(self.max_iterations, "max_iterations", min_value=0),
            "beta": V.check_real(self.beta, "beta", min_value=0.0, min_inclusive=False),
            "ic_threshold": V.check_real(self.ic_threshold, "ic_threshold", min_value=1.0, allow_inf=True),
            "remove_threshold": V.check_real(self.remove_threshold, "remove_threshold", min_value=1.0, allow_inf=True),
            "min_cluster_size": V.check_int(self.min_cluster_size, "min_cluster_size", min_value=1),
            "resolution_tolerance": V.check_real(
                self.resolution_tolerance, "resolution_tolerance", min_value=0.0, min_inclusive=False
            ),
            "n_jobs": int(joblib.effective_n_jobs(n_jobs)),
            "check_memory": bool(self.check_memory),
        }

    def _strategies(self, n_jobs: int) -> dict[str, Any]:
        layout = self.layout
        if isinstance(layout, str) and layout == "auto":
            layout = "serial" if n_jobs == 1 else "processes"
        return {
            "searcher": _resolve_strategy(self.searcher, "searcher"),
            "optimizer": _resolve_strategy(self.optimizer, "optimizer"),
            "scorer": _resolve_strategy(self.scorer, "scorer"),
            "layout": _resolve_strategy(layout, "layout"),
        }

    # ------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------
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

    def _fit(self, X: Any) -> SCICE:
        t_start = time.perf_counter()
        # A failed or interrupted fit must not leave an earlier fit's results behind.
        for attr in ("results_", "labels_", "best_cluster_", "best_resolution_", "n_cells_"):
            self.__dict__.pop(attr, None)
        p = self._check_params()
        graph = graph_from_input(X, self.graph_key)
        strategies = self._strategies(p["n_jobs"])
        if p["mode"] == "cluster_range":
            targets = V.check_cluster_range(self.cluster_range, graph.n_vertices)
            resolutions = None
        else:
            targets = None
            resolutions = V.check_resolution(self.resolution)
        rng = check_random_state(self.random_state)
        seeds = RunSeeds.draw(rng, p["n_trials"])
        leiden = LeidenConfig(objective_function=p["objective"], min_cluster_size=p["min_cluster_size"])
        n_tasks = len(targets) if targets is not None else len(resolutions)
        layout_info = strategies["layout"].resolve(p["n_jobs"], n_tasks, graph.n_vertices, graph.n_edges)
        if p["check_memory"]:
            self._check_memory(graph, p, strategies["optimizer"], layout_info)
        ckpt = self._open_checkpoint(graph, p, targets, resolutions, strategies)
        verbose = bool(self.verbose)
        if verbose:
            logger.info(
                "scice: %d cells, %d edges, %s mode; %s layout, %d worker(s) (%d outer x %d inner), backend %s",
                graph.n_vertices,
                graph.n_edges,
                p["mode"].replace("_", " "),
                layout_info.layout,
                layout_info.n_workers,
                layout_info.outer_workers,
                layout_info.inner_workers,
                layout_info.backend,
            )

        timings: dict[str, float] = {
            "n_leiden_calls": 0,
            "n_cache_hits": 0,
            "leiden_seconds": 0.0,
            "scoring_seconds": 0.0,
            "n_probes": 0,
        }
        # Every Leiden trial of the fit (search and tasks) goes through one runner,
        # which splits trial sets into chunks for the layout's workers.
        runner = TrialRunner(
            graph,
            leiden,
            layout=strategies["layout"],
            n_chunks=layout_info.inner_workers,
            n_workers=layout_info.pool_workers,
        )
        with strategies["layout"].session(layout_info.pool_workers):
            try:
                return self._fit_with_runner(
                    p,
                    graph,
                    strategies,
                    targets,
                    resolutions,
                    seeds,
                    runner,
                    layout_info,
                    ckpt,
                    timings,
                    t_start,
                    verbose,
                )
            except BaseException:
                runner.abort()  # e.g. Ctrl-C during the search: end its running chunks
                raise
            finally:
                runner.stop()

    def _fit_with_runner(
        self, p, graph, strategies, targets, resolutions, seeds, runner, layout_info, ckpt, timings, t_start, verbose
    ) -> SCICE:
        search = None
        t_search = time.perf_counter()
        if targets is not None:
            context = SearchContext(runner, strategies["scorer"], seeds, p["resolution_tolerance"])
            search = ckpt.load("search") if ckpt is not None else None
            if search is None:
                try:
                    search = strategies["searcher"].run(targets, context, p["remove_threshold"])
                except WorkerError as err:
                    raise TaskFailedError(
                        f"scice: a worker failed during the resolution search ({err}). No results were kept; "
                        "fix the cause and fit again."
                    ) from err
                if ckpt is not None:
                    ckpt.save("search", search)
            else:
                timings["search_resumed"] = 1
            stats = context.stats()
            for key in ("scoring_seconds", "n_probes"):
                timings[key] += stats[key]
            tasks = [
                Task(key=int(k), target=int(k), lower=lo, upper=hi, hint=search.hints.get(k))
                for k, (lo, hi) in sorted(search.intervals.items())
            ]
            if verbose:
                logger.info(
                    "scice: search used %d probes; %d of %d targets bracketed",
                    stats["n_probes"],
                    len(tasks),
                    len(targets),
                )
        else:
            tasks = [Task(key=i, gamma=float(g)) for i, g in enumerate(resolutions)]
        timings["search_seconds"] = time.perf_counter() - t_search

        spec = RunSpec(
            leiden=runner.config,
            optimizer=strategies["optimizer"],
            scorer=strategies["scorer"],
            seeds=seeds,
            n_trials=p["n_trials"],
            n_iterations=p["n_iterations"],
            beta=p["beta"],
            max_iterations=p["max_iterations"],
            n_bootstrap=p["n_bootstrap"],
        )
        t_opt = time.perf_counter()
        outcomes: list[TaskResult] = [None] * len(tasks)  # type: ignore[list-item]
        if ckpt is not None:
            for i, t in enumerate(tasks):
                saved = ckpt.load(f"task_{t.key}")
                if saved is not None and saved.task == t:
                    outcomes[i] = saved
        resumed = [i for i, o in enumerate(outcomes) if o is not None]
        timings["n_tasks_resumed"] = len(resumed)
        pending = [
            i for i in _dispatch_order(tasks, search.probes if search is not None else None) if outcomes[i] is None
        ]
        ran = self._run_tasks(graph, [tasks[i] for i in pending], spec, runner, layout_info, verbose, ckpt)
        for i, o in zip(pending, ran, strict=False):
            outcomes[i] = o
        timings["optimize_seconds"] = time.perf_counter() - t_opt
        timings["task_seconds"] = 0.0
        for o in ran:  # work done by this fit (resumed tasks ran earlier)
            for key in ("scoring_seconds", "task_seconds"):
                timings[key] += o.stats.get(key, 0)
        stats = runner.stats()  # Leiden work of this fit only (the search included)
        for key in ("n_leiden_calls", "n_cache_hits", "leiden_seconds", "n_chunks", "n_graph_sends"):
            timings[key] = stats[key]
        timings["total_seconds"] = time.perf_counter() - t_start
        # Process time available for Leiden: the wall time of the processes that ran it
        # (the parent when serial, else the workers). 1 - leiden_seconds / worker_seconds
        # is the share outside Leiden: bookkeeping, scoring, dispatch and idle workers.
        timings["worker_seconds"] = timings["total_seconds"] * max(1, layout_info.pool_workers)

        results = self._assemble(p, graph, targets, resolutions, search, outcomes, layout_info, timings)
        self.results_ = results
        self.n_cells_ = graph.n_vertices
        best = results.best
        if best is None:
            warnings.warn(
                "No cluster count could be evaluated; see results_.uncovered_targets for the reasons. "
                "labels_ is -1 for every cell.",
                UserWarning,
                stacklevel=2,
            )
            self.labels_ = np.full(graph.n_vertices, -1, dtype=np.int64)
            self.best_cluster_ = None
            self.best_resolution_ = None
        else:
            self.labels_ = np.asarray(best.best_labels)
            self.best_cluster_ = best.n_cluster
            self.best_resolution_ = best.gamma
        if verbose:
            logger.info(
                "scice: done in %.2f s; counts %s, best %s",
                timings["total_seconds"],
                results.n_cluster.tolist(),
                self.best_cluster_,
            )
        return self

    def _run_tasks(
        self,
        graph: GraphData,
        tasks: list[Task],
        spec: RunSpec,
        runner: TrialRunner,
        layout_info,
        verbose: bool,
        ckpt: Checkpoint | None = None,
    ) -> list[TaskResult]:
        """Evaluate ``tasks`` (in dispatch order); results come back in the same order."""
        if not tasks:
            return []
        bar = None
        if verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), desc="scice", unit="task", disable=None)
        done: set[int] = set()

        def finished(result: TaskResult) -> None:
            done.add(result.task.key)
            if ckpt is not None:
                ckpt.save(f"task_{result.task.key}", result)
            if bar is not None:
                bar.update(1)
            if verbose:
                found = (
                    "no result"
                    if result.result is None
                    else (f"{result.result.n_cluster} clusters, IC {result.result.ic:.4f}")
                )
                logger.info("scice: %s done: %s", describe_task(result.task), found)

        def own_spec() -> RunSpec:
            # Each task gets its own copy of the strategies: tasks may run side by side.
            return dataclasses.replace(spec, optimizer=copy.deepcopy(spec.optimizer), scorer=copy.deepcopy(spec.scorer))

        out: list[TaskResult] = [None] * len(tasks)  # type: ignore[list-item]
        try:
            if layout_info.outer_workers <= 1:
                for i, task in enumerate(tasks):
                    out[i] = evaluate_task(graph, task, own_spec(), runner)
                    finished(out[i])
            else:
                # Threads of this process coordinate the tasks in flight; their Leiden
                # chunks go to the workers through the runner. Tasks start in order.
                pool = ThreadPoolExecutor(max_workers=layout_info.outer_workers, thread_name_prefix="scice-task")
                try:
                    futures = {
                        pool.submit(evaluate_task, graph, task, own_spec(), runner): i for i, task in enumerate(tasks)
                    }
                    for future in as_completed(futures):
                        i = futures[future]
                        out[i] = future.result()
                        finished(out[i])
                except BaseException:
                    # Tasks still running stop at their next Leiden request; the layout
                    # ends running chunks now, so the threads need not wait for them.
                    runner.abort()
                    raise
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
        except WorkerError as err:
            pending = [describe_task(t) for t in tasks if t.key not in done]
            raise TaskFailedError(
                f"scice: a worker failed ({err}) while these were unfinished: "
                f"{'; '.join(pending) or 'none'}. No results were kept; fix the cause and fit again"
                + (" (finished targets are in the checkpoint)." if ckpt is not None else ".")
            ) from err
        finally:
            if bar is not None:
                bar.close()
        return out

    def _check_memory(self, graph: GraphData, p: dict, optimizer: Any, layout_info) -> None:
        n_steps = int(getattr(optimizer, "n_steps", 11))
        workers = layout_info.pool_workers
        need = estimate_run_bytes(
            graph.n_vertices, graph.n_edges, p["n_trials"], n_steps, workers, layout_info.outer_workers
        )
        have = available_memory()
        if have is None:
            return
        on_workers = (
            f" + {workers} worker(s) x {format_bytes(need['per_worker'])} (each holds the graph)" if workers > 1 else ""
        )
        detail = (
            f"about {format_bytes(need['total'])} (this process {format_bytes(need['parent'])}: the graph plus, "
            f"for {layout_info.outer_workers} target(s) at a time, {n_steps} resolutions x {p['n_trials']} trials x "
            f"{graph.n_vertices} cells of labels{on_workers}), and {format_bytes(have)} is available"
        )
        advice = (
            "Lower n_jobs (each worker holds its own copy of the graph), n_trials or optimizer__n_steps, "
            "or free memory; check_memory=False skips this check."
        )
        if need["total"] > have:
            raise MemoryError(f"This run needs {detail}. {advice}")
        if need["total"] > 0.5 * have:
            warnings.warn(f"This run needs {detail}: more than half of it. {advice}", ResourceWarning, stacklevel=3)

    def _open_checkpoint(self, graph: GraphData, p: dict, targets, resolutions, strategies) -> Checkpoint | None:
        if self.checkpoint is None:
            return None
        if not isinstance(self.checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a folder path, got {type(self.checkpoint).__name__}.")
        if not isinstance(self.random_state, (int, np.integer)) or isinstance(self.random_state, bool):
            raise ValueError(
                "checkpoint needs an integer random_state (e.g. random_state=0): resuming must replay the same seeds."
            )
        from importlib.metadata import PackageNotFoundError, version

        try:
            pkg_version = version("scice")
        except PackageNotFoundError:  # pragma: no cover
            pkg_version = "unknown"
        parts = {
            "version": pkg_version,
            "graph": graph.token,
            "targets": None if targets is None else [int(k) for k in targets],
            "resolutions": None if resolutions is None else [float(g) for g in resolutions],
            "params": {k: v for k, v in p.items() if k not in ("n_jobs", "check_memory")},
            "random_state": int(self.random_state),
            "strategies": {
                name: [
                    type(obj).__module__ + "." + type(obj).__qualname__,
                    {k: repr(v) for k, v in sorted(obj.get_params(deep=True).items())},
                ]
                for name, obj in strategies.items()
                if name != "layout"
            },
        }
        return Checkpoint(self.checkpoint, run_fingerprint(parts))

    def _assemble(self, p, graph, targets, resolutions, search, outcomes, layout_info, timings) -> SCICEResults:
        uncovered: dict[int, str] = {}
        if search is not None:
            uncovered.update(search.uncovered)
        # Rekey by final count; keep the lower IC (ties: the earlier task).
        by_count: dict[int, TaskResult] = {}
        for o in outcomes:
            if o.result is None:
                continue
            current = by_count.get(o.result.n_cluster)
            if current is None or o.result.ic < current.result.ic:
                by_count[o.result.n_cluster] = o
        clusters = tuple(o.result for o in by_count.values())
        final_counts = set(by_count)
        kept_tasks = {id(o) for o in by_count.values()}

        target_rows, resolution_rows, optimization_rows = [], [], []
        for o in outcomes:
            t = o.task
            status, n_final, ic = "no_result", None, np.nan
            if o.result is not None:
                n_final, ic = o.result.n_cluster, o.result.ic
                status = "returned" if id(o) in kept_tasks else "deduplicated"
            if t.target is not None:
                reason = o.reason
                if o.result is not None and t.target not in final_counts:
                    if n_final != t.target:
                        reason = f"rekeyed: the result for target {t.target} has {n_final} clusters after the merge"
                    else:
                        reason = "deduplicated: another target gave the same count with a lower IC"
                if t.target not in final_counts:
                    uncovered.setdefault(t.target, reason)
                for row in o.diagnostics:
                    optimization_rows.append(row)
            else:
                resolution_rows.append(
                    {
                        "resolution_index": t.key,
                        "gamma": t.gamma,
                        "median_count": o.diagnostics[0]["median_count"] if o.diagnostics else np.nan,
                        "trial_ic": o.result.trial_ic if o.result is not None else np.nan,
                        "n_cluster": -1 if n_final is None else n_final,
                        "ic": ic,
                        "status": status,
                    }
                )
        if targets is not None:
            by_target = {o.task.target: o for o in outcomes}
            for k in targets.tolist():
                o = by_target.get(k)
                lo, hi = search.intervals.get(k, (np.nan, np.nan)) if search else (np.nan, np.nan)
                target_rows.append(
                    {
                        "target": k,
                        "lower": lo,
                        "upper": hi,
                        "bracketed": k in search.intervals,
                        "n_cluster": -1 if o is None or o.result is None else o.result.n_cluster,
                        "ic": np.nan if o is None or o.result is None else o.result.ic,
                        # "returned": this target's own result is the one kept for count k;
                        # "covered": another target's result has k clusters.
                        "status": (
                            "returned"
                            if o is not None and by_count.get(k) is o
                            else ("covered" if k in final_counts else "uncovered")
                        ),
                        "reason": "" if k in final_counts else uncovered.get(k, ""),
                    }
                )
        uncovered = {k: v for k, v in sorted(uncovered.items()) if targets is not None and k not in final_counts}
        params = {
            "objective_function": p["objective"],
            "n_trials": p["n_trials"],
            "n_bootstrap": p["n_bootstrap"],
            "n_iterations": p["n_iterations"],
            "max_iterations": p["max_iterations"],
            "beta": p["beta"],
            "remove_threshold": p["remove_threshold"],
            "min_cluster_size": p["min_cluster_size"],
            "resolution_tolerance": p["resolution_tolerance"],
            # the obsp key read; "" for a fit on a matrix (no key was read)
            "graph_key": self.graph_key if graph.cell_names is not None else "",
            "random_state": self.random_state if isinstance(self.random_state, (int, np.integer)) else None,
        }
        return SCICEResults(
            clusters=clusters,
            analysis_mode=p["mode"],
            ic_threshold=p["ic_threshold"],
            requested_cluster_range=None if targets is None else np.asarray(targets, dtype=np.int64),
            resolution_input=None if resolutions is None else np.asarray(resolutions, dtype=np.float64),
            uncovered_targets=uncovered,
            search_coverage_complete=True if targets is None else len(search.intervals) == len(targets),
            target_diagnostics=pd.DataFrame(target_rows),
            resolution_search_diagnostics=(search.probes if search is not None else pd.DataFrame()),
            optimization_diagnostics=pd.DataFrame(optimization_rows),
            resolution_diagnostics=pd.DataFrame(resolution_rows),
            parallel_layout=layout_info.as_dict(),
            params=params,
            cell_names=graph.cell_names,
            timings=dict(timings),
        )
