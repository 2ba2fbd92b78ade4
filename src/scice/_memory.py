"""Estimate a run's memory before it starts, and compare with what the machine has."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._warn import warn_from_caller

if TYPE_CHECKING:
    from ._graph import GraphData
    from ._plan import FitPlan

__all__ = [
    "WORKER_BASELINE_BYTES",
    "available_memory",
    "check_run_memory",
    "estimate_run_bytes",
    "format_bytes",
    "local_cores",
    "plan_run_bytes",
]

#: Bytes per undirected edge of a process that runs Leiden on the graph: our arrays
#: (int32 x2 + float64), igraph's copy with its weight attribute (Python floats) and a
#: Leiden call's working memory. Measured as a worker's peak above its idle size:
#: 205 bytes per edge on a 112,751-edge graph (10,000 cells), 200 on an 11,885,273-edge
#: graph (1,000,000 cells; ``benchmarks/bench_scale.py``).
_EDGE_BYTES = 208
#: Resident memory of an idle worker process: the interpreter with numpy, igraph and
#: scice's worker module (measured: VmRSS 47.8 MB of a loky worker started by scice,
#: after its first call, before it received a graph; 49.5 MB after a chunk on
#: pbmc68k_reduced).
WORKER_BASELINE_BYTES = 48 * 2**20


def local_cores() -> int:
    """CPU cores this process may use (its affinity mask and cgroup quota, via ``joblib.cpu_count``)."""
    import joblib

    return max(1, int(joblib.cpu_count()))


def available_memory() -> int | None:
    """Memory available to new allocations in bytes (Linux ``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate_run_bytes(
    n_cells: int, n_edges: int, n_trials: int, n_steps: int, n_workers: int, n_tasks: int = 1
) -> dict[str, int]:
    """Rough peak memory of a run.

    The parent holds the graph and, for each of the ``n_tasks`` tasks in flight,
    the labelings of up to ``n_steps`` trial sets of ``n_trials`` trials plus two
    being refined (int32 while Leiden runs, 4 bytes per label); on top of that its
    trial-set cache (at most 256 MiB) and the final results. Each of the
    ``n_workers`` worker processes (none when ``n_workers <= 1``: everything runs
    here) holds :data:`WORKER_BASELINE_BYTES` of its own, the graph (our arrays
    and igraph's) and one chunk of trials with its starting labels.

    Returns
    -------
    dict
        ``per_worker``, ``parent`` and ``total`` in bytes.
    """
    graph = n_edges * _EDGE_BYTES + n_cells * 8
    trial_set = n_trials * n_cells * 4
    parent = graph + max(1, n_tasks) * (n_steps + 2) * trial_set + min(n_steps * trial_set, 256 * 2**20)
    workers = max(1, n_workers)
    per_worker = WORKER_BASELINE_BYTES + graph + 2 * trial_set // workers if workers > 1 else 0
    total = parent + workers * per_worker
    return {"per_worker": int(per_worker), "parent": int(parent), "total": int(total)}


def format_bytes(n: float) -> str:
    """A byte count for humans, in binary units: ``512 B``, ``503.1 KiB``, ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def plan_run_bytes(graph: GraphData, plan: FitPlan) -> dict[str, int]:
    """:func:`estimate_run_bytes` for a fit of ``plan`` on ``graph`` (its grid size and parallel layout)."""
    n_steps = int(getattr(plan.strategies.optimizer, "n_steps", 11))
    info = plan.layout_info
    return estimate_run_bytes(
        graph.n_vertices, graph.n_edges, plan.n_trials, n_steps, info.pool_workers, info.outer_workers
    )


def check_run_memory(graph: GraphData, plan: FitPlan) -> None:
    """Refuse a run that needs more memory than is available; warn above half of it.

    Raises
    ------
    MemoryError
        The estimate exceeds the available memory.
    """
    n_steps = int(getattr(plan.strategies.optimizer, "n_steps", 11))
    info = plan.layout_info
    workers = info.pool_workers
    need = plan_run_bytes(graph, plan)
    have = available_memory()
    if have is None:
        return
    on_workers = (
        f" + {workers} worker process(es) x {format_bytes(need['per_worker'])} (each "
        f"{format_bytes(WORKER_BASELINE_BYTES)} of its own plus its copy of the graph)"
        if workers > 1
        else ""
    )
    detail = (
        f"about {format_bytes(need['total'])} (this process {format_bytes(need['parent'])}: the graph plus, "
        f"for {info.outer_workers} target(s) at a time, {n_steps} resolutions x {plan.n_trials} trials x "
        f"{graph.n_vertices} cells of labels{on_workers}), and {format_bytes(have)} is available"
    )
    advice = (
        "Lower n_jobs (each worker holds its own copy of the graph), n_trials or optimizer__n_steps, "
        "or free memory; check_memory=False skips this check."
    )
    if need["total"] > have:
        raise MemoryError(f"This run needs {detail}. {advice}")
    if need["total"] > 0.5 * have:
        warn_from_caller(f"This run needs {detail}: more than half of it. {advice}", ResourceWarning)
