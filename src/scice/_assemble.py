"""Task results -> :class:`~scice.SCICEResults`: one result per final cluster count, and the diagnostics.

Tasks are keyed by the count they targeted, but a result is keyed by the count
its labels have after small clusters are merged. Two tasks can end at the same
count; the one with the lower IC is kept (ties: the earlier task).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._results import SCICEResults
from ._warn import warn_from_caller

if TYPE_CHECKING:
    from ._fit import TaskResult
    from ._graph import GraphData
    from ._plan import FitPlan
    from .strategies._base import SearchOutcome

__all__ = ["assemble"]


def assemble(
    plan: FitPlan,
    graph: GraphData,
    search: SearchOutcome | None,
    outcomes: list[TaskResult],
    timings: dict[str, float],
) -> SCICEResults:
    """The results of a fit from its plan, graph, search outcome and task results (in task order)."""
    by_count = _rekey(outcomes)
    targets = plan.targets
    uncovered = _uncovered(search, outcomes, set(by_count))
    return SCICEResults(
        clusters=tuple(o.result for o in by_count.values()),
        analysis_mode=plan.mode,
        ic_threshold=plan.ic_threshold,
        requested_cluster_range=None if targets is None else np.asarray(targets, dtype=np.int64),
        resolution_input=None if plan.resolutions is None else np.asarray(plan.resolutions, dtype=np.float64),
        uncovered_targets=(
            {} if targets is None else {k: v for k, v in sorted(uncovered.items()) if k not in by_count}
        ),
        search_coverage_complete=True if targets is None else len(search.intervals) == len(targets),
        target_diagnostics=pd.DataFrame(_target_rows(targets, search, outcomes, by_count, uncovered)),
        resolution_search_diagnostics=(search.probes if search is not None else pd.DataFrame()),
        optimization_diagnostics=pd.DataFrame(_optimization_rows(outcomes)),
        resolution_diagnostics=pd.DataFrame(_resolution_rows(outcomes, by_count)),
        parallel_layout=plan.layout_info.as_dict(),
        params=_params_record(plan, graph),
        cell_names=graph.cell_names,
        timings=dict(timings),
    )


def _rekey(outcomes: list[TaskResult]) -> dict[int, TaskResult]:
    """``{final count: the task result kept for it}``: the lower IC, ties to the earlier task."""
    by_count: dict[int, TaskResult] = {}
    for o in outcomes:
        if o.result is None:
            continue
        current = by_count.get(o.result.n_cluster)
        if current is None or o.result.ic < current.result.ic:
            by_count[o.result.n_cluster] = o
    return by_count


def _uncovered(search: SearchOutcome | None, outcomes: list[TaskResult], final_counts: set[int]) -> dict[int, str]:
    """``{target: reason}`` for targets without a result of their count (the search's reasons first).

    A target whose own result ended at another count (after the merge) or lost
    to another task's result of its count is explained by that.
    """
    uncovered: dict[int, str] = {}
    if search is not None:
        uncovered.update(search.uncovered)
    for o in outcomes:
        target = o.task.target
        if target is None or target in final_counts:
            continue
        reason = o.reason
        if o.result is not None:
            if o.result.n_cluster != target:
                reason = f"rekeyed: the result for target {target} has {o.result.n_cluster} clusters after the merge"
            else:
                reason = "deduplicated: another target gave the same count with a lower IC"
        uncovered.setdefault(target, reason)
    return uncovered


def _target_rows(
    targets: np.ndarray | None,
    search: SearchOutcome | None,
    outcomes: list[TaskResult],
    by_count: dict[int, TaskResult],
    uncovered: dict[int, str],
) -> list[dict[str, Any]]:
    """One row per requested target (cluster-range mode): its interval, result and status."""
    if targets is None:
        return []
    by_target = {o.task.target: o for o in outcomes}
    rows = []
    for k in targets.tolist():
        o = by_target.get(k)
        lo, hi = search.intervals.get(k, (np.nan, np.nan)) if search else (np.nan, np.nan)
        if o is not None and by_count.get(k) is o:
            status = "returned"  # this target's own result is the one kept for count k
        else:
            status = "covered" if k in by_count else "uncovered"  # covered: another target's result has k clusters
        rows.append(
            {
                "target": k,
                "lower": lo,
                "upper": hi,
                "bracketed": k in search.intervals,
                "n_cluster": -1 if o is None or o.result is None else o.result.n_cluster,
                "ic": np.nan if o is None or o.result is None else o.result.ic,
                "status": status,
                "reason": "" if k in by_count else uncovered.get(k, ""),
            }
        )
    return rows


def _optimization_rows(outcomes: list[TaskResult]) -> list[dict[str, Any]]:
    """The optimizers' diagnostics rows of every target task, in task order."""
    return [row for o in outcomes if o.task.target is not None for row in o.diagnostics]


def _resolution_rows(outcomes: list[TaskResult], by_count: dict[int, TaskResult]) -> list[dict[str, Any]]:
    """One row per manual resolution: its result and whether that result is kept."""
    kept = {id(o) for o in by_count.values()}
    rows = []
    for o in outcomes:
        if o.task.target is not None:
            continue
        if o.result is None:
            n_final, ic, status = None, np.nan, "no_result"
        else:
            n_final, ic = o.result.n_cluster, o.result.ic
            status = "returned" if id(o) in kept else "deduplicated"
        rows.append(
            {
                "resolution_index": o.task.key,
                "gamma": o.task.gamma,
                "median_count": o.diagnostics[0]["median_count"] if o.diagnostics else np.nan,
                "trial_ic": o.result.trial_ic if o.result is not None else np.nan,
                "n_cluster": -1 if n_final is None else n_final,
                "ic": ic,
                "status": status,
                "reason": o.reason if o.result is None else "",
            }
        )
    failed = [f"{r['gamma']:g} ({r['reason']})" for r in rows if r["status"] == "no_result" and r["reason"]]
    if failed and len(failed) < len(rows):  # none at all is the fit's own "no cluster count" warning
        warn_from_caller(
            "These resolutions gave no result (see results_.resolution_diagnostics): " + "; ".join(failed), UserWarning
        )
    return rows


def _params_record(plan: FitPlan, graph: GraphData) -> dict[str, Any]:
    """The method parameters stored with the results."""
    return {
        "objective_function": plan.objective,
        "n_trials": plan.n_trials,
        "n_bootstrap": plan.n_bootstrap,
        "n_iterations": plan.n_iterations,
        "max_iterations": plan.max_iterations,
        "beta": plan.beta,
        "remove_threshold": plan.remove_threshold,
        "min_cluster_size": plan.min_cluster_size,
        "resolution_tolerance": plan.resolution_tolerance,
        # the obsp key read; "" for a fit on a matrix (no key was read)
        "graph_key": plan.graph_key if graph.cell_names is not None else "",
        "random_state": plan.random_state if isinstance(plan.random_state, (int, np.integer)) else None,
    }
