"""The stages of a fit: the resolution search, then one optimisation task per target or resolution.

Every Leiden trial of a fit (search probes and tasks) goes through one
:class:`~scice._leiden.TrialRunner` (:func:`open_runner`), which splits trial
sets into chunks for the layout's workers. :func:`evaluate_task` runs in this
process (one thread per task in flight); its result depends only on the graph,
the task and the :class:`RunSpec`, which is why every parallel layout and
backend gives identical results, and why tasks saved in a checkpoint can be
reused by a later run (:func:`resume`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._context import OptimizeContext, RunSeeds, SearchContext, shattered_fraction
from ._graph import GraphData
from ._leiden import FitCancelled, LeidenConfig, TrialRunner, TrialSet, WorkerError
from ._logging import logger
from ._merge import merge_small_clusters
from ._results import ClusterResult
from .exceptions import TaskFailedError
from .strategies._base import SearchOutcome, Task

if TYPE_CHECKING:
    from ._checkpoint import Checkpoint, TrialStore
    from ._plan import FitPlan
    from ._timings import Timings

__all__ = [
    "RunSpec",
    "TaskResult",
    "describe_task",
    "dispatch_order",
    "evaluate_task",
    "finalize",
    "log_start",
    "open_runner",
    "resume",
    "run_search",
    "run_tasks",
]


# ---------------------------------------------------------------------------
# one task
# ---------------------------------------------------------------------------
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

    @classmethod
    def from_plan(cls, plan: FitPlan, leiden: LeidenConfig) -> RunSpec:
        """The spec of every task of ``plan`` (``leiden``: the runner's configuration)."""
        return cls(
            leiden=leiden,
            optimizer=plan.strategies.optimizer,
            scorer=plan.strategies.scorer,
            seeds=plan.seeds,
            n_trials=plan.n_trials,
            n_iterations=plan.n_iterations,
            beta=plan.beta,
            max_iterations=plan.max_iterations,
            n_bootstrap=plan.n_bootstrap,
        )


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
        mei=np.where(graph.isolated, np.nan, np.asarray(mei, dtype=np.float64)),
        n_iter=int(trial_set.n_iterations),
        source_target_cluster=int(source_target),
        trial_ic=float(score.ic),
    )


def describe_task(task: Any) -> str:
    """``"target 8 (resolutions 0.003 .. 0.0031)"`` or ``"resolution 0.05"``."""
    if getattr(task, "target", None) is not None:
        return f"target {task.target} (resolutions {task.lower:.4g} .. {task.upper:.4g})"
    return f"resolution {task.gamma:.4g}"


def evaluate_task(
    graph: GraphData,
    task: Any,
    spec: RunSpec,
    runner: TrialRunner,
    progress: _Progress | None = None,
    store: TrialStore | None = None,
) -> TaskResult:
    """Optimise ``task`` and finalise its chosen trial set.

    An exception from the strategies is re-raised as :class:`TaskFailedError`
    naming the task; a failure of the worker pool (:class:`WorkerError`) and a
    stopped fit (:class:`FitCancelled`) pass through unchanged. ``progress``
    is told the trials the task plans (see :class:`_Progress`); ``store``
    keeps the task's trial sets in a checkpoint while it runs.
    """
    try:
        return _evaluate_task(graph, task, spec, runner, progress, store)
    except (WorkerError, FitCancelled):
        raise
    except Exception as err:
        raise TaskFailedError(f"scice: evaluating {describe_task(task)} failed: {type(err).__name__}: {err}") from err


def _evaluate_task(
    graph: GraphData,
    task: Any,
    spec: RunSpec,
    runner: TrialRunner,
    progress: _Progress | None,
    store: TrialStore | None,
) -> TaskResult:
    t0 = time.perf_counter()
    context = OptimizeContext(
        runner=runner,
        scorer=spec.scorer,
        seeds=spec.seeds,
        n_trials=spec.n_trials,
        n_iterations=spec.n_iterations,
        beta=spec.beta,
        max_iterations=spec.max_iterations,
        plan_trials=None if progress is None else progress.plan,
        planned=0 if progress is None else planned_trials(task, spec),
        store=store,
    )
    try:
        outcome = spec.optimizer.optimize(task, context)
    finally:
        context.release()
    result, reason = None, outcome.reason
    shattered = _shattered_reason(outcome.trial_set, spec.leiden.min_cluster_size)
    if shattered:
        reason = shattered
    elif outcome.trial_set is not None:
        source = -1 if task.target is None else int(task.target)
        result = finalize(outcome.trial_set, graph, spec, task.key, source, context)
    stats = {"scoring_seconds": context.scoring_seconds, "task_seconds": time.perf_counter() - t0}
    return TaskResult(task=task, result=result, reason=reason, diagnostics=outcome.diagnostics, stats=stats)


def planned_trials(task: Any, spec: RunSpec) -> int:
    """The trials a task is known to need before it starts: its resolution grid (or one trial set).

    A manual-mode task runs one trial set; a target runs the optimizer's grid
    (``n_steps`` resolutions, when the optimizer has that parameter) and then
    refinement rounds, which are announced as they start.
    """
    if getattr(task, "target", None) is None:
        return int(spec.n_trials)
    n_steps = getattr(spec.optimizer, "n_steps", None)
    return int(n_steps) * int(spec.n_trials) if isinstance(n_steps, int) else 0


def _shattered_reason(trial_set: TrialSet | None, min_cluster_size: int) -> str:
    """Why a trial set gives no result: most cells in clusters below ``min_cluster_size`` ("" if not).

    The small-cluster merge would fold such a labeling into a few large clusters
    that Leiden never found (all singletons become "1 cluster, IC 1").
    """
    if trial_set is None:
        return ""
    fraction = shattered_fraction(trial_set.labelings, min_cluster_size)
    if fraction <= 0.5:
        return ""
    return (
        f"resolution {trial_set.gamma:.4g} shatters the graph: in the median trial {fraction:.0%} of the cells are "
        f"in clusters smaller than min_cluster_size={min_cluster_size}; use a smaller resolution"
    )


# ---------------------------------------------------------------------------
# the stages of a fit
# ---------------------------------------------------------------------------
def log_start(graph: GraphData, plan: FitPlan) -> None:
    """With ``verbose``: one line on the graph, the mode and the parallel layout."""
    if not plan.verbose:
        return
    info = plan.layout_info
    logger.info(
        "scice: %d cells, %d edges, %s mode; %s layout, %d worker(s) (%d outer x %d inner), backend %s",
        graph.n_vertices,
        graph.n_edges,
        plan.mode.replace("_", " "),
        info.layout,
        info.n_workers,
        info.outer_workers,
        info.inner_workers,
        info.backend,
    )


@contextmanager
def open_runner(graph: GraphData, plan: FitPlan, progress: _Progress | None = None) -> Iterator[TrialRunner]:
    """The fit's trial runner, inside the layout's worker session.

    On any exception (Ctrl-C during the search, a failed task) the runner is
    aborted, which ends its running chunks; on leaving it refuses further work.
    ``progress`` counts the trials the runner runs.
    """
    info = plan.layout_info
    layout = plan.strategies.layout
    runner = TrialRunner(
        graph,
        plan.leiden,
        layout=layout,
        n_chunks=info.inner_workers,
        n_workers=info.pool_workers,
        on_trials=None if progress is None else progress.ran,
    )
    with layout.session(info.pool_workers):
        try:
            yield runner
        except BaseException:
            runner.abort()
            raise
        finally:
            runner.stop()


def run_search(
    plan: FitPlan,
    runner: TrialRunner,
    ckpt: Checkpoint | None,
    timings: Timings,
    progress: _Progress | None = None,
) -> tuple[SearchOutcome | None, list[Task]]:
    """The search outcome (``None`` in manual mode) and the tasks to evaluate, in key order.

    Cluster-range mode: the searcher brackets each target (or the outcome is
    loaded from the checkpoint) and every bracketed target becomes a task.
    Manual mode: one task per resolution. ``progress`` is told the trials of
    each batch of probes before it runs.
    """
    t0 = time.perf_counter()
    if plan.targets is None:
        tasks = [Task(key=i, gamma=float(g)) for i, g in enumerate(plan.resolutions)]
        timings.add_search(time.perf_counter() - t0)
        return None, tasks
    # the tolerance is absolute on a graph of REFERENCE_WEIGHT; it scales with the weights (CPM)
    tolerance = plan.resolution_tolerance * plan.leiden.weight_scale
    search = ckpt.load("search") if ckpt is not None else None
    resumed = search is not None
    context = SearchContext(
        runner,
        plan.strategies.scorer,
        plan.seeds,
        tolerance,
        plan_trials=None if progress is None else progress.plan,
        store=None if ckpt is None or resumed else ckpt.trial_store("search"),
    )
    if search is None:
        search = _search(plan, context)
        if ckpt is not None:
            ckpt.save("search", search)
    stats = context.stats()
    tasks = [
        Task(key=int(k), target=int(k), lower=lo, upper=hi, hint=search.hints.get(k))
        for k, (lo, hi) in sorted(search.intervals.items())
    ]
    if plan.verbose:
        n_probes = len(search.probes) if resumed else stats["n_probes"]
        found = f"resumed from the checkpoint ({n_probes} probes)" if resumed else f"used {n_probes} probes"
        logger.info("scice: search %s; %d of %d targets bracketed", found, len(tasks), len(plan.targets))
    timings.add_search(time.perf_counter() - t0, stats, resumed)
    return search, tasks


def _search(plan: FitPlan, context: SearchContext) -> SearchOutcome:
    try:
        return plan.strategies.searcher.run(plan.targets, context, plan.remove_threshold)
    except WorkerError as err:
        raise TaskFailedError(
            f"scice: a worker failed during the resolution search ({err}). No results were kept; "
            "fix the cause and fit again."
        ) from err


def resume(ckpt: Checkpoint | None, tasks: list[Task]) -> list[TaskResult | None]:
    """Per task, its result saved in the checkpoint by an earlier run of the same fit, or ``None``."""
    out: list[TaskResult | None] = [None] * len(tasks)
    if ckpt is not None:
        for i, task in enumerate(tasks):
            saved = ckpt.load(f"task_{task.key}")
            if saved is not None and saved.task == task:
                out[i] = saved
    return out


def dispatch_order(tasks: list[Task], probes: pd.DataFrame | None) -> list[int]:
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


def run_tasks(
    graph: GraphData,
    plan: FitPlan,
    runner: TrialRunner,
    tasks: list[Task],
    search: SearchOutcome | None,
    ckpt: Checkpoint | None,
    timings: Timings,
    progress: _Progress | None = None,
) -> list[TaskResult]:
    """Every task's result, in task order: resumed from the checkpoint or evaluated now.

    ``progress`` (default: a new one for this stage) saves each finished task
    to the checkpoint and counts the trials; the grids of all pending tasks are
    added to its total before the first starts.
    """
    spec = RunSpec.from_plan(plan, runner.config)
    t0 = time.perf_counter()
    outcomes = resume(ckpt, tasks)
    n_resumed = sum(o is not None for o in outcomes)
    if plan.verbose and n_resumed:
        logger.info("scice: %d of %d targets resumed from the checkpoint", n_resumed, len(tasks))
    order = dispatch_order(tasks, search.probes if search is not None else None)
    pending = [i for i in order if outcomes[i] is None]
    with contextlib.ExitStack() as stack:
        if progress is None:
            progress = stack.enter_context(_Progress(plan.verbose, ckpt))
        progress.plan(sum(planned_trials(tasks[i], spec) for i in pending))
        ran = _evaluate_tasks(graph, [tasks[i] for i in pending], spec, runner, plan, ckpt, progress)
    for i, result in zip(pending, ran, strict=True):
        outcomes[i] = result
    if ckpt is not None:
        ckpt.drop_trials()  # every stage's result is saved (this also clears leftovers of an earlier stop)
    timings.add_tasks([o.stats for o in ran], time.perf_counter() - t0, n_resumed)
    return outcomes  # type: ignore[return-value]  # every entry is set now


def _evaluate_tasks(
    graph: GraphData,
    tasks: list[Task],
    spec: RunSpec,
    runner: TrialRunner,
    plan: FitPlan,
    ckpt: Checkpoint | None,
    progress: _Progress,
) -> list[TaskResult]:
    """Evaluate ``tasks`` (in dispatch order); results come back in the same order."""
    if not tasks:
        return []
    try:
        if plan.layout_info.outer_workers <= 1:
            return _one_at_a_time(graph, tasks, spec, runner, progress)
        return _side_by_side(graph, tasks, spec, runner, plan.layout_info.outer_workers, progress)
    except WorkerError as err:
        unfinished = [describe_task(t) for t in tasks if t.key not in progress.done]
        raise TaskFailedError(
            f"scice: a worker failed ({err}) while these were unfinished: "
            f"{'; '.join(unfinished) or 'none'}. No results were kept; fix the cause and fit again"
            + (
                " (finished targets, and the trial sets of unfinished ones, are in the checkpoint)."
                if ckpt is not None
                else "."
            )
        ) from err


def _own_spec(spec: RunSpec) -> RunSpec:
    """The spec with the task's own copy of the strategies: tasks may run side by side."""
    return dataclasses.replace(spec, optimizer=copy.deepcopy(spec.optimizer), scorer=copy.deepcopy(spec.scorer))


def _one_at_a_time(
    graph: GraphData, tasks: list[Task], spec: RunSpec, runner: TrialRunner, progress: _Progress
) -> list[TaskResult]:
    out = []
    for task in tasks:
        out.append(evaluate_task(graph, task, _own_spec(spec), runner, progress, progress.trial_store(task)))
        progress.finished(out[-1])
    return out


def _side_by_side(
    graph: GraphData, tasks: list[Task], spec: RunSpec, runner: TrialRunner, n_threads: int, progress: _Progress
) -> list[TaskResult]:
    # Threads of this process coordinate the tasks in flight; their Leiden chunks
    # go to the workers through the runner. Tasks start in order.
    out: list[TaskResult] = [None] * len(tasks)  # type: ignore[list-item]
    pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="scice-task")
    try:
        futures = {
            pool.submit(evaluate_task, graph, task, _own_spec(spec), runner, progress, progress.trial_store(task)): i
            for i, task in enumerate(tasks)
        }
        for future in as_completed(futures):
            i = futures[future]
            out[i] = future.result()
            progress.finished(out[i])
    except BaseException:
        # Tasks still running stop at their next Leiden request; the layout ends
        # running chunks now, so the threads need not wait for them.
        runner.abort()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _is_console(handler: logging.Handler) -> bool:
    """Whether ``handler`` prints to the terminal (stdout or stderr)."""
    return isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (sys.stdout, sys.stderr)


def _make_bar() -> Any:
    """The progress bar: tqdm's automatic flavour (a terminal bar, a widget in Jupyter).

    ``disable=None`` hides it when stderr is not a terminal (a batch job's log).
    """
    from tqdm.auto import tqdm

    return tqdm(total=0, desc="scice", unit="call", disable=None, dynamic_ncols=True)


class _Progress:
    """The progress of one fit: one bar counted in Leiden calls, checkpoint saves, log lines.

    The bar counts what the trial runner reports (:meth:`ran`, the same count
    as ``results_.timings["n_leiden_calls"]``). Its total is changed only by
    :meth:`plan`, as work is planned: each batch of search probes before it
    runs, the resolution grids of all pending tasks when the tasks start, each
    refinement round as it starts; trials answered from the runner's memory or
    from the checkpoint's trial store and the unused part of a grid (a task that
    stopped early) are taken back. When
    the fit ends the total is set to the count. With ``verbose`` the bar shows
    in terminals and notebooks (``tqdm.auto``) and every ``"scice"`` log line
    is printed through it (``tqdm.contrib.logging``), so neither garbles the
    other; without ``verbose`` nothing is shown. :attr:`done` holds the keys of
    the finished tasks; each is saved to the checkpoint as it finishes.

    Parameters
    ----------
    verbose
        Show the bar and the log lines.
    ckpt
        Where finished tasks are saved, or ``None``.
    """

    def __init__(self, verbose: bool, ckpt: Checkpoint | None = None):
        self.verbose = bool(verbose)
        self.ckpt = ckpt
        self.done: set[int] = set()
        self.total = 0
        self.count = 0
        self._bar: Any = None
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Progress:
        if self.verbose:
            from tqdm.auto import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._bar = self._stack.enter_context(_make_bar())
            # route the console handlers that print scice's lines (its own, the root's) through the bar
            consoles = [log for log in (logger, logging.getLogger()) if any(_is_console(h) for h in log.handlers)]
            if consoles:
                self._stack.enter_context(logging_redirect_tqdm(loggers=consoles, tqdm_class=tqdm))
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.total = self.count
            if self._bar is not None:
                self._bar.total = self.count
                self._bar.refresh()
        self._stack.close()

    def plan(self, n: int) -> None:
        """Grow (or, for negative ``n``, shrink) the total by ``n`` trials: the one place it changes."""
        with self._lock:
            self.total = max(self.total + int(n), self.count)
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.refresh()

    def ran(self, computed: int, cached: int) -> None:
        """The trial runner ran ``computed`` Leiden calls; ``cached`` planned trials needed none."""
        if cached:
            self.plan(-cached)
        with self._lock:
            self.count += int(computed)
            self.total = max(self.total, self.count)
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.update(int(computed))

    def trial_store(self, task: Any) -> TrialStore | None:
        """Where ``task`` keeps its trial sets while it runs (``None`` without a checkpoint)."""
        return None if self.ckpt is None else self.ckpt.trial_store(f"task_{task.key}")

    def finished(self, result: TaskResult) -> None:
        """Record one finished task: checkpoint save (its trial sets are then deleted), log line."""
        self.done.add(result.task.key)
        if self.ckpt is not None:
            self.ckpt.save(f"task_{result.task.key}", result)
        if self.verbose:
            cluster = result.result
            found = "no result" if cluster is None else f"{cluster.n_cluster} clusters, IC {cluster.ic:.4f}"
            logger.info("scice: %s done: %s", describe_task(result.task), found)
