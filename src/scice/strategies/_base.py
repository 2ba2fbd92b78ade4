"""The four strategy families, each a small ABC with one abstract method.

Every strategy subclasses :class:`sklearn.base.BaseEstimator`, so its
constructor arguments are parameters: ``clone`` works and the estimator exposes
them as nested parameters (``SCICE(...).set_params(scorer__...)``). Strategies get
what they need through a context object and return plain data; they never reach
back into the estimator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._similarity import (
    TrialSetScore,
    bootstrap_inconsistency,
    cell_consistency,
    inconsistency,
    unique_partitions,
)

if TYPE_CHECKING:  # pragma: no cover
    from .._context import OptimizeContext, SearchContext
    from .._leiden import TrialSet

__all__ = [
    "Searcher",
    "Optimizer",
    "ICScorer",
    "ParallelLayout",
    "Task",
    "SearchOutcome",
    "OptimizeOutcome",
    "LayoutInfo",
]


# ---------------------------------------------------------------------------
# Plain data exchanged between the stages
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One unit of optimisation work.

    Cluster-range mode: ``target`` with the resolution interval ``[lower, upper]``.
    Manual mode: ``target is None`` and ``gamma`` is the resolution to evaluate.
    ``key`` is stable across runs (target or input position); it seeds the bootstrap.
    ``hint`` (optional) is a resolution inside the interval where the search saw
    the target count; optimizers may start there.
    """

    key: int
    target: int | None = None
    lower: float | None = None
    upper: float | None = None
    gamma: float | None = None
    hint: float | None = None


@dataclass
class SearchOutcome:
    """What a searcher found.

    Attributes
    ----------
    intervals
        ``{target: (lower, upper)}`` for every bracketed target.
    uncovered
        ``{target: reason}`` for targets that were not bracketed or were dropped.
    probes
        One row per probe: ``gamma``, ``median_count``, ``ic`` and more.
    hints
        Optional ``{target: gamma}``: a resolution inside the interval where the
        search saw the target count (optimizers may start there).
    """

    intervals: dict[int, tuple[float, float]] = field(default_factory=dict)
    uncovered: dict[int, str] = field(default_factory=dict)
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    hints: dict[int, float] = field(default_factory=dict)


@dataclass
class OptimizeOutcome:
    """What an optimizer chose for a task: a trial set, or a reason for none."""

    trial_set: TrialSet | None
    reason: str = ""
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LayoutInfo:
    """How a run's workers are arranged.

    ``outer_workers``: optimisation tasks (targets / resolutions) in flight at
    once, each coordinated by a thread of the parent process; ``inner_workers``:
    the number of chunks each requested trial set is split into. ``1`` / ``1``
    runs everything in the parent; otherwise the chunks run on a pool of
    :attr:`pool_workers` (``n_workers``) worker processes.
    """

    n_workers: int
    outer_workers: int
    inner_workers: int
    backend: str
    layout: str

    @property
    def pool_workers(self) -> int:
        """Worker processes that run Leiden: ``n_workers``, or 0 when everything runs in the parent."""
        return 0 if self.outer_workers <= 1 and self.inner_workers <= 1 else max(1, int(self.n_workers))

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_workers": self.n_workers,
            "outer_workers": self.outer_workers,
            "inner_workers": self.inner_workers,
            "backend": self.backend,
            "layout": self.layout,
        }


# ---------------------------------------------------------------------------
# Strategy bases
# ---------------------------------------------------------------------------
class Searcher(BaseEstimator, ABC):
    """Finds, for each target cluster count, a resolution interval to optimise in.

    Subclasses implement :meth:`search`. :meth:`run` adds the pre-filter that drops
    targets whose probes are all inconsistent.
    """

    @abstractmethod
    def search(self, targets: np.ndarray, context: SearchContext) -> SearchOutcome:
        """Probe resolutions through ``context.probe`` and bracket each target."""

    def prefilter(self, outcome: SearchOutcome, remove_threshold: float) -> SearchOutcome:
        """Drop a target if >= 2 probes lie inside its interval and all have IC >= ``remove_threshold``."""
        probes = outcome.probes
        if probes.empty or not np.isfinite(remove_threshold):
            return outcome
        for target, (lower, upper) in list(outcome.intervals.items()):
            inside = probes[(probes["gamma"] > lower) & (probes["gamma"] < upper)]
            if len(inside) >= 2 and bool((inside["ic"] >= remove_threshold).all()):
                del outcome.intervals[target]
                outcome.hints.pop(target, None)
                outcome.uncovered[target] = (
                    f"pre-filter: all {len(inside)} search probes in the interval had "
                    f"IC >= remove_threshold ({remove_threshold:g})"
                )
        return outcome

    def run(self, targets: np.ndarray, context: SearchContext, remove_threshold: float) -> SearchOutcome:
        """Search, then pre-filter (the template the estimator calls)."""
        outcome = self.search(np.asarray(targets), context)
        return self.prefilter(outcome, remove_threshold)


class Optimizer(BaseEstimator, ABC):
    """Chooses the trial set that represents a task's target."""

    @abstractmethod
    def optimize(self, task: Task, context: OptimizeContext) -> OptimizeOutcome:
        """Evaluate resolutions for ``task`` and return the chosen trial set."""

    def evaluate_fixed(self, task: Task, context: OptimizeContext) -> OptimizeOutcome:
        """Manual resolution mode: one trial set at ``task.gamma``, no search."""
        trial_set = context.trials(task.gamma)
        score = context.score(trial_set)
        row = {
            "gamma": trial_set.gamma,
            "stage": "manual",
            "round": 0,
            "median_count": trial_set.median_count,
            "trial_ic": score.ic,
            "n_partitions": int(score.partitions.shape[0]),
        }
        return OptimizeOutcome(trial_set=trial_set, diagnostics=[row])


class ICScorer(BaseEstimator, ABC):
    """Scores a trial set: unique partitions, pairwise similarity S, IC = 1/(p^T S p).

    Subclasses implement :meth:`similarity` for two labelings (1 for identical
    partitions). The hooks below build on it and may be overridden for speed.
    """

    @abstractmethod
    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Similarity of two labelings of the same cells (1 when they are the same partition)."""

    def similarity_matrix(self, partitions: np.ndarray) -> np.ndarray:
        """Symmetric ``(U, U)`` matrix of pairwise similarities, diagonal 1."""
        u = partitions.shape[0]
        sim = np.eye(u)
        for i in range(u):
            for j in range(i + 1, u):
                sim[i, j] = sim[j, i] = float(self.similarity(partitions[i], partitions[j]))
        return sim

    def score(self, labelings: np.ndarray) -> TrialSetScore:
        """Collapse ``(T, n)`` labelings into unique partitions and compute the IC."""
        partitions, counts, inverse = unique_partitions(labelings)
        sim = self.similarity_matrix(partitions)
        ic = inconsistency(counts / counts.sum(), sim)
        return TrialSetScore(partitions=partitions, counts=counts, inverse=inverse, similarity=sim, ic=ic)

    def bootstrap(self, score: TrialSetScore, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
        """IC of each of ``n_bootstrap`` resamples of the trials, reusing ``score.similarity``."""
        return bootstrap_inconsistency(score.inverse, score.similarity, n_bootstrap, rng)

    def cell_consistency(self, score: TrialSetScore) -> np.ndarray:
        """Per-cell consistency (element-centric, whatever the similarity)."""
        return cell_consistency(score.partitions, score.frequencies)


class ParallelLayout(BaseEstimator, ABC):
    """Runs chunks of Leiden trials, in the parent process or on workers.

    :meth:`map` receives independent function calls (chunks of seeded trials)
    and must return their results in order; each result depends only on its
    arguments, so any layout gives identical results. When :meth:`resolve` says
    ``outer_workers > 1``, several threads of the parent call :meth:`map` at
    once, so it must be thread-safe then.
    """

    @abstractmethod
    def map(
        self,
        func: Callable[..., Any],
        tasks: Sequence[tuple],
        n_jobs: int,
        callback: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """Return ``[func(*args) for args in tasks]``; call ``callback`` as each finishes."""

    def session(self, n_jobs: int) -> AbstractContextManager:
        """Context kept open around all of a fit's :meth:`map` calls (hook; default: nothing)."""
        return nullcontext()

    def abort(self) -> None:
        """Stop running work at once: the fit was interrupted or failed (hook; default: nothing).

        Called before the fit waits for its task threads, so that a thread
        waiting for a long chunk returns now rather than when the chunk is done.
        """

    def ready(self) -> bool:
        """Whether :meth:`map` can start work now (hook; default True).

        While it is False (e.g. worker processes still starting), the fit runs
        Leiden in the parent process; results do not depend on where it runs.
        """
        return True

    def resolve(self, n_jobs: int, n_tasks: int, n_vertices: int, n_edges: int) -> LayoutInfo:
        """Decide how many tasks are in flight and how many chunks a trial set is split into (hook).

        The default runs one task at a time and splits its trial sets over
        ``n_jobs`` workers, which needs no thread-safety from :meth:`map`.
        """
        return LayoutInfo(
            n_workers=n_jobs,
            outer_workers=1,
            inner_workers=max(1, n_jobs),
            backend="sequential" if n_jobs == 1 else "unknown",
            layout=type(self).__name__,
        )
