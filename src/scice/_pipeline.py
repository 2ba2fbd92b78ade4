"""One optimisation task end to end: optimise, then finalise into a ClusterResult.

:func:`evaluate_task` runs in the parent process (one thread per task in
flight); the Leiden trials it asks for go through the fit's shared
:class:`~scice._leiden.TrialRunner`, which may run them on workers. Its result
depends only on the graph, the task and the spec, which is why every parallel
layout and backend gives identical results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._context import OptimizeContext, RunSeeds
from ._graph import GraphData
from ._leiden import FitCancelled, LeidenConfig, TrialRunner, TrialSet, WorkerError
from ._merge import merge_small_clusters
from ._results import ClusterResult
from .exceptions import TaskFailedError

__all__ = ["RunSpec", "TaskResult", "TaskFailedError", "describe_task", "evaluate_task", "finalize"]


@dataclass(frozen=True)
class RunSpec:
    """Everything a task needs besides the graph, the task and the trial runner."""

    leiden: LeidenConfig
    optimizer: Any
    scorer: Any
    seeds: RunSeeds
    n_trials: int
    n_iterations: int
    beta: float
    max_iterations: int
    n_bootstrap: int


@dataclass
class TaskResult:
    """The outcome of one task (what checkpoints store)."""

    task: Any
    result: ClusterResult | None
    reason: str = ""
    diagnostics: list[dict] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)


def finalize(
    trial_set: TrialSet, graph: GraphData, spec: RunSpec, task_key: int, source_target: int, context: OptimizeContext
) -> ClusterResult:
    """Bootstrap IC, representative labels, per-cell consistency and the merge."""
    score = context.score(trial_set)
    t0 = time.perf_counter()
    ic_vec = spec.scorer.bootstrap(score, spec.n_bootstrap, spec.seeds.bootstrap_rng(task_key))
    mei = spec.scorer.cell_consistency(score)
    context.scoring_seconds += time.perf_counter() - t0
    best = score.partitions[score.best_index]
    final = merge_small_clusters(best, graph, spec.leiden.min_cluster_size)
    return ClusterResult(
        n_cluster=int(final.max(initial=-1)) + 1,
        gamma=float(trial_set.gamma),
        ic=float(np.median(ic_vec)),
        ic_vec=np.asarray(ic_vec, dtype=np.float64),
        best_labels=final,
        labelings=score.partitions,
        frequencies=score.counts.astype(np.int64),
        mei=np.asarray(mei, dtype=np.float64),
        n_iter=int(trial_set.n_iterations),
        source_target_cluster=int(source_target),
        trial_ic=float(score.ic),
    )


def describe_task(task: Any) -> str:
    """``"target 8 (resolutions 0.003 .. 0.0031)"`` or ``"resolution 0.05"``."""
    if getattr(task, "target", None) is not None:
        return f"target {task.target} (resolutions {task.lower:.4g} .. {task.upper:.4g})"
    return f"resolution {task.gamma:.4g}"


def evaluate_task(graph: GraphData, task: Any, spec: RunSpec, runner: TrialRunner) -> TaskResult:
    """Optimise ``task`` and finalise its chosen trial set.

    An exception from the strategies is re-raised as :class:`TaskFailedError`
    naming the task; a failure of the worker pool (:class:`WorkerError`) and a
    stopped fit (:class:`FitCancelled`) pass through unchanged.
    """
    try:
        return _evaluate_task(graph, task, spec, runner)
    except (WorkerError, FitCancelled):
        raise
    except Exception as err:
        raise TaskFailedError(f"scice: evaluating {describe_task(task)} failed: {type(err).__name__}: {err}") from err


def _evaluate_task(graph: GraphData, task: Any, spec: RunSpec, runner: TrialRunner) -> TaskResult:
    t0 = time.perf_counter()
    context = OptimizeContext(
        runner=runner,
        scorer=spec.scorer,
        seeds=spec.seeds,
        n_trials=spec.n_trials,
        n_iterations=spec.n_iterations,
        beta=spec.beta,
        max_iterations=spec.max_iterations,
    )
    outcome = spec.optimizer.optimize(task, context)
    result = None
    if outcome.trial_set is not None:
        source = -1 if task.target is None else int(task.target)
        result = finalize(outcome.trial_set, graph, spec, task.key, source, context)
    stats = {"scoring_seconds": context.scoring_seconds, "task_seconds": time.perf_counter() - t0}
    return TaskResult(task=task, result=result, reason=outcome.reason, diagnostics=outcome.diagnostics, stats=stats)
