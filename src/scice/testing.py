"""Conformance suites for the four strategy families.

Every built-in strategy runs these in the test-suite, and so can yours::

    from scice.testing import check_strategy

    class MyScorer(scice.strategies.ICScorer):
        def similarity(self, a, b): ...

    check_strategy(MyScorer())   # raises AssertionError naming the broken contract

Each check runs real Leiden trials on a small graph of separated groups of cells
(:func:`make_blob_graph`); nothing is mocked. A check passes silently and raises
:class:`AssertionError` with a message saying which contract failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from ._context import OptimizeContext, RunSeeds, SearchContext
from ._graph import GraphData, graph_from_input
from ._leiden import LeidenConfig, TrialRunner, TrialSet
from ._similarity import TrialSetScore
from .strategies._base import (
    ICScorer,
    LayoutInfo,
    OptimizeOutcome,
    Optimizer,
    ParallelLayout,
    Searcher,
    SearchOutcome,
    Task,
)

__all__ = [
    "make_blob_graph",
    "blob_graph",
    "check_scorer",
    "check_searcher",
    "check_optimizer",
    "check_layout",
    "check_strategy",
]


def make_blob_graph(n_blobs: int = 4, size: int = 30, k: int = 6, seed: int = 0, n_bridges: int = 3) -> sp.csr_matrix:
    """A symmetric kNN-like graph of ``n_blobs`` groups of ``size`` cells.

    Each cell links to ``k`` random cells of its own group with weights in
    ``[0.5, 1]``; consecutive groups are joined by ``n_bridges`` weak edges
    (weight 0.05), so the graph is connected and Leiden finds 1 cluster at tiny
    resolutions and the groups at moderate ones: targets ``2..n_blobs`` are
    reachable.
    """
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for b in range(n_blobs):
        members = np.arange(b * size, (b + 1) * size)
        for i in members:
            nbrs = rng.choice(members[members != i], size=k, replace=False)
            rows.extend([int(i)] * k)
            cols.extend(nbrs.tolist())
            vals.extend(rng.uniform(0.5, 1.0, size=k).tolist())
        if b + 1 < n_blobs:
            for _ in range(n_bridges):
                rows.append(int(rng.integers(b * size, (b + 1) * size)))
                cols.append(int(rng.integers((b + 1) * size, (b + 2) * size)))
                vals.append(0.05)
    n = n_blobs * size
    adj = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    return adj.maximum(adj.T).tocsr()


def blob_graph(n_blobs: int = 4, size: int = 40, k: int = 8, seed: int = 0, bridge: float = 0.0) -> sp.csr_matrix:
    """:func:`make_blob_graph` with the defaults of scice's own tests.

    Each cell links to ``k`` random cells of its own group; ``bridge`` > 0 adds that
    many weak links between consecutive groups (0: the groups are disconnected).
    """
    return make_blob_graph(n_blobs, size, k, seed, n_bridges=int(bridge))


def _graph() -> GraphData:
    return graph_from_input(make_blob_graph(), "connectivities")


def _seeds(n_trials: int = 6, seed: int = 0) -> RunSeeds:
    return RunSeeds.draw(np.random.RandomState(seed), n_trials)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _check_params_roundtrip(strategy: Any) -> None:
    name = type(strategy).__name__
    params = strategy.get_params()
    cloned = clone(strategy)
    _check(type(cloned) is type(strategy), f"{name}: clone() returned a {type(cloned).__name__}.")
    _check(
        cloned.get_params().keys() == params.keys(),
        f"{name}: clone() changed the parameter names; store every __init__ argument verbatim.",
    )
    cloned.set_params(**params)


# ---------------------------------------------------------------------------
# ICScorer
# ---------------------------------------------------------------------------
def check_scorer(scorer: ICScorer) -> None:
    """Check an :class:`~scice.strategies.ICScorer` against the IC contract.

    Contracts: ``similarity`` is 1 for the same partition under any relabelling
    and symmetric; ``score`` gives IC == 1 exactly when all trials agree and
    IC > 1 when they do not; ``bootstrap`` returns ``n_bootstrap`` values >= 1
    and is deterministic for a seeded generator; ``cell_consistency`` is one value
    in [0, 1] per cell, all 1 when the trials agree.
    """
    name = type(scorer).__name__
    _check(isinstance(scorer, ICScorer), f"{name} is not an ICScorer subclass.")
    _check_params_roundtrip(scorer)
    rng = np.random.default_rng(0)
    n = 60
    a = rng.integers(0, 4, n)
    perm = rng.permutation(4)
    relabelled = perm[a]
    b = rng.integers(0, 5, n)

    s_aa = float(scorer.similarity(a, relabelled))
    _check(abs(s_aa - 1.0) < 1e-12, f"{name}.similarity of a relabelled partition is {s_aa}, expected 1.")
    s_ab, s_ba = float(scorer.similarity(a, b)), float(scorer.similarity(b, a))
    _check(abs(s_ab - s_ba) < 1e-12, f"{name}.similarity is not symmetric ({s_ab} vs {s_ba}).")
    _check(s_ab < 1.0, f"{name}.similarity of two different partitions is {s_ab}, expected < 1.")

    same = np.stack([a, relabelled, a, perm[relabelled]])
    score = scorer.score(same)
    _check(isinstance(score, TrialSetScore), f"{name}.score must return a TrialSetScore.")
    _check(score.ic == 1.0, f"{name}.score of identical (relabelled) trials gave IC {score.ic}, expected 1.")
    _check(score.partitions.shape == (1, n), f"{name}.score did not collapse relabelled trials into one partition.")
    mixed = np.stack([a, b, a, relabelled, b])
    mixed_score = scorer.score(mixed)
    _check(mixed_score.ic > 1.0, f"{name}.score of disagreeing trials gave IC {mixed_score.ic}, expected > 1.")
    sim = np.asarray(mixed_score.similarity)
    _check(
        sim.shape == (2, 2) and np.allclose(np.diag(sim), 1.0) and np.allclose(sim, sim.T),
        f"{name}: the similarity matrix must be square, symmetric, with diagonal 1.",
    )

    boot1 = np.asarray(scorer.bootstrap(mixed_score, 25, np.random.default_rng(1)))
    boot2 = np.asarray(scorer.bootstrap(mixed_score, 25, np.random.default_rng(1)))
    _check(boot1.shape == (25,), f"{name}.bootstrap returned shape {boot1.shape}, expected (25,).")
    _check(np.array_equal(boot1, boot2), f"{name}.bootstrap is not deterministic for a seeded generator.")
    _check(bool(np.all(boot1 >= 1.0 - 1e-12)), f"{name}.bootstrap returned an IC below 1.")

    cc = np.asarray(scorer.cell_consistency(mixed_score))
    _check(cc.shape == (n,), f"{name}.cell_consistency returned shape {cc.shape}, expected ({n},).")
    _check(bool(np.all((cc >= -1e-12) & (cc <= 1 + 1e-12))), f"{name}.cell_consistency left [0, 1].")
    cc_same = np.asarray(scorer.cell_consistency(score))
    _check(np.allclose(cc_same, 1.0), f"{name}.cell_consistency is not 1 where all trials agree.")


# ---------------------------------------------------------------------------
# Searcher
# ---------------------------------------------------------------------------
def _search_context(objective: str = "CPM", scorer: ICScorer | None = None) -> SearchContext:
    from .strategies._score import ECSScorer

    runner = TrialRunner(_graph(), LeidenConfig(objective_function=objective))
    return SearchContext(runner, scorer or ECSScorer(), _seeds(), resolution_tolerance=1e-8)


def check_searcher(searcher: Searcher, objectives: tuple[str, ...] = ("CPM", "modularity")) -> None:
    """Check a :class:`~scice.strategies.Searcher` on a graph with 4 separated groups.

    Contracts: ``run`` returns a :class:`~scice.strategies.SearchOutcome`; every
    target is either bracketed (``lower <= upper``, both finite and non-negative) or
    uncovered with a non-empty reason, never both; the probe table has ``gamma``,
    ``median_count`` and ``ic`` columns; two runs with the same seeds give the same
    outcome.
    """
    name = type(searcher).__name__
    _check(isinstance(searcher, Searcher), f"{name} is not a Searcher subclass.")
    _check_params_roundtrip(searcher)
    targets = np.array([2, 3, 4, 40])
    for objective in objectives:
        outcomes = []
        for _ in range(2):
            outcome = clone(searcher).run(targets, _search_context(objective), remove_threshold=1.15)
            _check(isinstance(outcome, SearchOutcome), f"{name}.run must return a SearchOutcome.")
            outcomes.append(outcome)
        outcome = outcomes[0]
        both = set(outcome.intervals) & set(outcome.uncovered)
        _check(not both, f"{name} ({objective}): targets {sorted(both)} are both bracketed and uncovered.")
        missing_targets = set(targets.tolist()) - set(outcome.intervals) - set(outcome.uncovered)
        _check(
            not missing_targets,
            f"{name} ({objective}): targets {sorted(missing_targets)} are neither bracketed nor uncovered.",
        )
        extra = (set(outcome.intervals) | set(outcome.uncovered)) - set(targets.tolist())
        _check(not extra, f"{name} ({objective}): outcome names targets that were not requested: {sorted(extra)}.")
        for k, (lo, hi) in outcome.intervals.items():
            _check(
                np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi,
                f"{name} ({objective}): interval for target {k} is ({lo}, {hi}); need 0 <= lower <= upper.",
            )
        for k, reason in outcome.uncovered.items():
            _check(
                isinstance(reason, str) and reason.strip() != "",
                f"{name} ({objective}): uncovered target {k} has no reason.",
            )
        if len(outcome.probes):
            missing = {"gamma", "median_count", "ic"} - set(outcome.probes.columns)
            _check(not missing, f"{name} ({objective}): probe table lacks columns {sorted(missing)}.")
        again = outcomes[1]
        _check(
            outcome.intervals == again.intervals and outcome.uncovered == again.uncovered,
            f"{name} ({objective}): two runs with the same seeds gave different outcomes.",
        )


# ---------------------------------------------------------------------------
# Optimizer
# ---------------------------------------------------------------------------
def _optimize_context(objective: str = "CPM") -> OptimizeContext:
    from .strategies._score import ECSScorer

    runner = TrialRunner(_graph(), LeidenConfig(objective_function=objective))
    return OptimizeContext(runner, ECSScorer(), _seeds(), n_trials=6, n_iterations=5, beta=0.1, max_iterations=5)


def check_optimizer(optimizer: Optimizer) -> None:
    """Check an :class:`~scice.strategies.Optimizer` on a graph with 4 separated groups.

    Contracts: ``optimize`` returns an :class:`~scice.strategies.OptimizeOutcome`;
    a chosen trial set lies inside the task's interval; no choice comes with a
    reason; manual tasks (``target is None``) evaluate exactly ``task.gamma``; the
    same task twice gives the same choice.
    """
    name = type(optimizer).__name__
    _check(isinstance(optimizer, Optimizer), f"{name} is not an Optimizer subclass.")
    _check_params_roundtrip(optimizer)
    from .strategies._search import BisectionSearcher

    search = BisectionSearcher().run(np.array([3, 4]), _search_context(), remove_threshold=1.15)
    _check(set(search.intervals) == {3, 4}, "internal: the reference search did not bracket targets 3 and 4.")
    for k, (lo, hi) in search.intervals.items():
        task = Task(key=k, target=k, lower=lo, upper=hi)
        first = clone(optimizer).optimize(task, _optimize_context())
        second = clone(optimizer).optimize(task, _optimize_context())
        _check(isinstance(first, OptimizeOutcome), f"{name}.optimize must return an OptimizeOutcome.")
        if first.trial_set is None:
            _check(bool(first.reason), f"{name}: target {k} has no trial set and no reason.")
            continue
        ts = first.trial_set
        _check(isinstance(ts, TrialSet), f"{name}: trial_set must be a TrialSet from the context.")
        _check(
            lo * (1 - 1e-12) <= ts.gamma <= hi * (1 + 1e-12),
            f"{name}: target {k} chose gamma {ts.gamma} outside its interval [{lo}, {hi}].",
        )
        _check(
            second.trial_set is not None and second.trial_set.key == ts.key,
            f"{name}: the same task gave different choices in two runs.",
        )
    manual = clone(optimizer).optimize(Task(key=0, gamma=0.05), _optimize_context())
    _check(
        manual.trial_set is not None and manual.trial_set.gamma == 0.05,
        f"{name}: a manual task (target None) must evaluate exactly task.gamma.",
    )


# ---------------------------------------------------------------------------
# ParallelLayout
# ---------------------------------------------------------------------------
def _square_with_seed(x: int, seed: int) -> tuple[int, float]:
    """A picklable task for layout checks: deterministic in its arguments."""
    return x * x, float(np.random.default_rng(seed).random())


def check_layout(layout: ParallelLayout, n_jobs: tuple[int, ...] = (1, 2)) -> None:
    """Check a :class:`~scice.strategies.ParallelLayout`.

    Contracts: ``map`` returns one result per task, in task order, equal to
    running the tasks in the parent; ``callback`` is called once per task;
    ``resolve`` returns a :class:`~scice.strategies.LayoutInfo` with
    ``1 <= outer_workers <= n_tasks`` and ``1 <= inner_workers <= max(n_jobs, 1)``;
    when ``outer_workers > 1``, ``map`` gives the same results when called from
    several threads at once (tasks are coordinated by threads of the parent).
    """
    name = type(layout).__name__
    _check(isinstance(layout, ParallelLayout), f"{name} is not a ParallelLayout subclass.")
    _check_params_roundtrip(layout)
    tasks = [(i, 100 + i) for i in range(7)]
    expected = [_square_with_seed(*t) for t in tasks]
    for jobs in n_jobs:
        seen: list[Any] = []
        callback: Callable[[Any], None] = seen.append
        out = list(layout.map(_square_with_seed, tasks, jobs, callback))
        _check(out == expected, f"{name}.map(n_jobs={jobs}) returned {out}, expected results in task order.")
        _check(
            len(seen) == len(tasks),
            f"{name}.map(n_jobs={jobs}) called the callback {len(seen)} times, expected {len(tasks)}.",
        )
        info = layout.resolve(jobs, n_tasks=5, n_vertices=1000, n_edges=10_000)
        _check(isinstance(info, LayoutInfo), f"{name}.resolve must return a LayoutInfo.")
        _check(
            1 <= info.outer_workers <= 5 and 1 <= info.inner_workers <= max(jobs, 1),
            f"{name}.resolve(n_jobs={jobs}, n_tasks=5) gave outer={info.outer_workers}, "
            f"inner={info.inner_workers}; need 1 <= outer <= n_tasks and 1 <= inner <= n_jobs.",
        )
        if info.outer_workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(3) as threads:
                outs = list(threads.map(lambda _, n=jobs: list(layout.map(_square_with_seed, tasks, n)), range(3)))
            _check(
                all(o == expected for o in outs),
                f"{name}.map(n_jobs={jobs}) gave wrong results when called from several threads at once "
                f"(its resolve says outer_workers={info.outer_workers}).",
            )


def check_strategy(strategy: Any) -> None:
    """Run the conformance suite of ``strategy``'s family."""
    if isinstance(strategy, ICScorer):
        check_scorer(strategy)
    elif isinstance(strategy, Searcher):
        check_searcher(strategy)
    elif isinstance(strategy, Optimizer):
        check_optimizer(strategy)
    elif isinstance(strategy, ParallelLayout):
        check_layout(strategy)
    else:
        raise TypeError(
            f"{type(strategy).__name__} is not a scice strategy; subclass one of Searcher, Optimizer, "
            "ICScorer or ParallelLayout from scice.strategies."
        )
