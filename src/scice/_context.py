"""What strategies see of a run: trial runners with fixed seeds, and the scorer.

Seeds are fixed before any work starts and depend only on ``random_state`` and a
trial's position (probe trial index, trial index, refinement round), never on
which process runs the trial or in what order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._leiden import TrialRequest, TrialRunner, TrialSet
from ._similarity import TrialSetScore

if TYPE_CHECKING:
    from ._checkpoint import TrialStore

__all__ = ["RunSeeds", "Probe", "SearchContext", "OptimizeContext", "shattered_fraction"]

_SEED_HIGH = 2**31 - 1


@dataclass(frozen=True)
class RunSeeds:
    """All randomness of a fit, drawn from ``random_state`` before any work.

    ``probe``: seeds of search probe trials (probe trial t uses ``probe[t]``);
    ``trials``: seeds of optimisation trials (trial t uses ``trials[t]`` at every
    resolution, so a trial set depends only on its resolution); ``refine`` and
    ``bootstrap``: entropy from which round r's refinement seeds and task key's
    bootstrap generator are derived.
    """

    probe: np.ndarray
    trials: np.ndarray
    refine: int
    bootstrap: int

    @classmethod
    def draw(cls, random_state: np.random.RandomState, n_trials: int, n_probe: int = 1024) -> RunSeeds:
        probe = random_state.randint(0, _SEED_HIGH, size=n_probe, dtype=np.int64)
        trials = random_state.randint(0, _SEED_HIGH, size=n_trials, dtype=np.int64)
        refine, bootstrap = random_state.randint(0, 2**63 - 1, size=2, dtype=np.int64)
        return cls(probe=probe, trials=trials, refine=int(refine), bootstrap=int(bootstrap))

    def refine_seeds(self, round_index: int, n_trials: int) -> np.ndarray:
        rng = np.random.default_rng([self.refine, int(round_index)])
        return rng.integers(0, _SEED_HIGH, size=n_trials, dtype=np.int64)

    def bootstrap_rng(self, task_key: int) -> np.random.Generator:
        return np.random.default_rng([self.bootstrap, int(task_key)])


@dataclass(frozen=True)
class Probe:
    """One search probe: a small trial set at one resolution."""

    gamma: float
    median_count: float
    ic: float
    counts: np.ndarray = field(repr=False)
    n_partitions: int = 1
    #: Most cells are in clusters below ``min_cluster_size`` (in the median trial): the
    #: resolution shatters the graph, so its effective count says nothing about k.
    shattered: bool = False


def shattered_fraction(labelings: np.ndarray, min_cluster_size: int) -> float:
    """Median over trials of the fraction of cells in clusters smaller than ``min_cluster_size``."""
    fractions = []
    for labels in np.asarray(labelings):
        sizes = np.bincount(labels)
        fractions.append(sizes[sizes < min_cluster_size].sum() / labels.size)
    return float(np.median(fractions))


class SearchContext:
    """Gives a :class:`~scice.strategies.Searcher` seeded probes and records them.

    Attributes
    ----------
    objective_function
        ``"CPM"`` or ``"modularity"``; searchers choose log or linear bisection by it.
    resolution_tolerance
        Absolute resolution tolerance from the estimator.
    n_vertices
        Number of cells.
    resolution_unit
        The graph's CPM resolution scale: its weighted edge density
        ``2 * total_weight / (n * (n - 1))`` (the resolution at which the whole
        graph as one cluster has CPM quality 0), to 6 significant digits.
        Scaling every weight by c scales it (and every CPM resolution giving the
        same partitions) by c, so searchers that start from it find the same
        counts on a scaled graph.

    Parameters
    ----------
    plan_trials
        Told how many trials each batch of probes is about to run (the
        progress bar's total grows by it).
    store
        The checkpoint's store of the search's trial sets (probes saved by an
        interrupted run are read from it, new ones saved to it), or ``None``.
    """

    def __init__(
        self,
        runner: TrialRunner,
        scorer: Any,
        seeds: RunSeeds,
        resolution_tolerance: float,
        plan_trials: Callable[[int], None] | None = None,
        store: TrialStore | None = None,
    ):
        self._runner = runner
        self._store = store
        self._plan_trials = plan_trials
        self._scorer = scorer
        self._seeds = seeds
        self.objective_function = runner.config.objective_function
        self.resolution_tolerance = resolution_tolerance
        self.n_vertices = runner.graph.n_vertices
        n = max(self.n_vertices, 2)
        density = float(2.0 * np.sum(runner.graph.weights) / (n * (n - 1)))
        # 6 significant digits: unmoved by rounding the weights (e.g. to float32)
        self.resolution_unit = float(f"{density:.6g}") if density > 0 else 1.0
        self._min_cluster_size = runner.config.min_cluster_size
        self.probes: list[Probe] = []
        self.scoring_seconds = 0.0

    def probe(self, gamma: float, n_trials: int = 10, n_iterations: int = 3, beta: float = 0.01) -> Probe:
        """Run ``n_trials`` seeded trials at ``gamma``; return (and record) the probe."""
        return self.probe_many([gamma], n_trials, n_iterations, beta)[0]

    def probe_many(
        self, gammas: list[float], n_trials: int = 10, n_iterations: int = 3, beta: float = 0.01
    ) -> list[Probe]:
        """:meth:`probe` at several resolutions at once (their trials run side by side)."""
        if n_trials > self._seeds.probe.size:
            raise ValueError(f"A probe can use at most {self._seeds.probe.size} trials, got {n_trials}.")
        seeds = self._seeds.probe[:n_trials]
        if self._plan_trials is not None:
            self._plan_trials(len(gammas) * int(n_trials))
        trial_sets = self._runner.run_many(
            [TrialRequest(float(g), seeds, int(n_iterations), float(beta)) for g in gammas], self._store
        )
        out = []
        for trial_set in trial_sets:
            t0 = time.perf_counter()
            score = self._scorer.score(trial_set.labelings)
            self.scoring_seconds += time.perf_counter() - t0
            probe = Probe(
                gamma=float(trial_set.gamma),
                median_count=trial_set.median_count,
                ic=float(score.ic),
                counts=np.asarray(trial_set.effective_counts),
                n_partitions=int(score.partitions.shape[0]),
                shattered=shattered_fraction(trial_set.labelings, self._min_cluster_size) > 0.5,
            )
            self.probes.append(probe)
            out.append(probe)
        return out

    def probe_frame(self) -> pd.DataFrame:
        """All probes so far, in the order they ran."""
        return pd.DataFrame(
            {
                "probe": np.arange(len(self.probes), dtype=np.int64),
                "gamma": [p.gamma for p in self.probes],
                "median_count": [p.median_count for p in self.probes],
                "ic": [p.ic for p in self.probes],
                "n_partitions": [p.n_partitions for p in self.probes],
                "shattered": [p.shattered for p in self.probes],
                "min_count": [int(p.counts.min()) for p in self.probes],
                "max_count": [int(p.counts.max()) for p in self.probes],
            }
        )

    def stats(self) -> dict:
        return {"scoring_seconds": self.scoring_seconds, "n_probes": len(self.probes)}


class OptimizeContext:
    """Gives an :class:`~scice.strategies.Optimizer` seeded trial sets and their scores.

    Attributes
    ----------
    n_trials, n_iterations, beta, max_iterations
        The estimator's trial parameters.
    objective_function
        ``"CPM"`` or ``"modularity"``.

    Parameters
    ----------
    plan_trials
        Told how many trials each request is about to run (the progress bar's
        total grows by it), less what ``planned`` already announced.
    planned
        Trials already announced for this task (its resolution grid); the
        first requests use this allowance, and :meth:`release` returns what is
        left when the task ends.
    store
        The checkpoint's store of this task's trial sets (those saved by an
        interrupted run are read from it, new ones saved to it), or ``None``.
    """

    def __init__(
        self,
        runner: TrialRunner,
        scorer: Any,
        seeds: RunSeeds,
        n_trials: int,
        n_iterations: int,
        beta: float,
        max_iterations: int,
        plan_trials: Callable[[int], None] | None = None,
        planned: int = 0,
        store: TrialStore | None = None,
    ):
        self._runner = runner
        self._store = store
        self._plan_trials = plan_trials
        self._planned = int(planned)
        self._scorer = scorer
        self._seeds = seeds
        self._scores: dict[tuple, TrialSetScore] = {}
        self.n_trials = n_trials
        self.n_iterations = n_iterations
        self.beta = beta
        self.max_iterations = max_iterations
        self.objective_function = runner.config.objective_function
        self.scoring_seconds = 0.0

    def trials(self, gamma: float) -> TrialSet:
        """``n_trials`` trials of ``n_iterations`` iterations at ``gamma``."""
        self._plan(self.n_trials)
        return self._runner.run(
            gamma, self._seeds.trials[: self.n_trials], self.n_iterations, self.beta, store=self._store
        )

    def refine(self, trial_set: TrialSet, round_index: int, n_iterations: int = 2) -> TrialSet:
        """Continue every trial from its own labels for ``n_iterations`` more iterations.

        ``round_index`` (1-based) selects the round's seeds, so a refinement chain
        depends only on its resolution and round.
        """
        return self.refine_all([trial_set], round_index, n_iterations)[0]

    def refine_all(self, trial_sets: list[TrialSet], round_index: int, n_iterations: int = 2) -> list[TrialSet]:
        """:meth:`refine` for several trial sets at once (their trials are dispatched together)."""
        requests = [
            TrialRequest(
                ts.gamma, self._seeds.refine_seeds(round_index, ts.n_trials), int(n_iterations), self.beta, start=ts
            )
            for ts in trial_sets
        ]
        self._plan(sum(int(req.seeds.size) for req in requests))
        return self._runner.run_many(requests, self._store)

    def _plan(self, n: int) -> None:
        """Announce ``n`` trials about to run, first from the task's allowance."""
        used = min(self._planned, n)
        self._planned -= used
        if self._plan_trials is not None and n > used:
            self._plan_trials(n - used)

    def release(self) -> None:
        """The task is over: withdraw the part of its allowance it did not use."""
        if self._plan_trials is not None and self._planned:
            self._plan_trials(-self._planned)
        self._planned = 0

    def score(self, trial_set: TrialSet) -> TrialSetScore:
        """The scorer's view of ``trial_set`` (computed once per trial set)."""
        cached = self._scores.get(trial_set.key)
        if cached is None:
            t0 = time.perf_counter()
            cached = self._scorer.score(trial_set.labelings)
            self.scoring_seconds += time.perf_counter() - t0
            self._scores[trial_set.key] = cached
        return cached
