"""What strategies see of a run: trial runners with fixed seeds, and the scorer.

Seeds are fixed before any work starts and depend only on ``random_state`` and a
trial's position (probe trial index, trial index, refinement round), never on
which process runs the trial or in what order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._graph import GraphData
from ._leiden import LeidenConfig, TrialRunner, TrialSet
from ._similarity import TrialSetScore

__all__ = ["RunSeeds", "Probe", "SearchContext", "OptimizeContext", "run_trial_chunk"]

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


def run_trial_chunk(graph: GraphData, config: LeidenConfig, gamma: float, seeds: np.ndarray,
                    n_iterations: int, beta: float) -> tuple[np.ndarray, dict]:
    """Worker entry point: run a chunk of trials and return the labelings and stats."""
    runner = TrialRunner(graph, config, cache_bytes=0)
    trial_set = runner.run(gamma, seeds, n_iterations, beta)
    return trial_set.labelings, runner.stats()


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
    """

    def __init__(
        self,
        graph: GraphData,
        config: LeidenConfig,
        scorer: Any,
        seeds: RunSeeds,
        resolution_tolerance: float,
        layout: Any = None,
        inner_workers: int = 1,
    ):
        self._graph = graph
        self._config = config
        self._scorer = scorer
        self._seeds = seeds
        self._layout = layout
        self._inner = inner_workers
        self._runner = TrialRunner(graph, config)
        self.objective_function = config.objective_function
        self.resolution_tolerance = resolution_tolerance
        self.n_vertices = graph.n_vertices
        self.probes: list[Probe] = []
        self.scoring_seconds = 0.0
        self._worker_stats = {"n_leiden_calls": 0, "leiden_seconds": 0.0}

    def probe(self, gamma: float, n_trials: int = 10, n_iterations: int = 3, beta: float = 0.01) -> Probe:
        """Run ``n_trials`` seeded trials at ``gamma``; return (and record) the probe."""
        if n_trials > self._seeds.probe.size:
            raise ValueError(f"A probe can use at most {self._seeds.probe.size} trials, got {n_trials}.")
        seeds = self._seeds.probe[:n_trials]
        if self._inner > 1 and self._layout is not None and n_trials > 1:
            chunks = [c for c in np.array_split(seeds, min(self._inner, n_trials)) if c.size]
            out = self._layout.map(
                run_trial_chunk,
                [(self._graph, self._config, float(gamma), c, n_iterations, beta) for c in chunks],
                self._inner,
            )
            labelings = np.concatenate([o[0].astype(np.int64) for o in out])
            for _, stats in out:
                self._worker_stats["n_leiden_calls"] += stats["n_leiden_calls"]
                self._worker_stats["leiden_seconds"] += stats["leiden_seconds"]
            from ._merge import effective_counts

            counts = effective_counts(labelings, self._config.min_cluster_size)
        else:
            trial_set = self._runner.run(gamma, seeds, n_iterations, beta)
            labelings, counts = trial_set.labelings, trial_set.effective_counts
        t0 = time.perf_counter()
        score = self._scorer.score(labelings)
        self.scoring_seconds += time.perf_counter() - t0
        probe = Probe(
            gamma=float(gamma),
            median_count=float(np.median(counts)),
            ic=float(score.ic),
            counts=np.asarray(counts),
            n_partitions=int(score.partitions.shape[0]),
        )
        self.probes.append(probe)
        return probe

    def probe_frame(self) -> pd.DataFrame:
        """All probes so far, in the order they ran."""
        return pd.DataFrame(
            {
                "probe": np.arange(len(self.probes), dtype=np.int64),
                "gamma": [p.gamma for p in self.probes],
                "median_count": [p.median_count for p in self.probes],
                "ic": [p.ic for p in self.probes],
                "n_partitions": [p.n_partitions for p in self.probes],
                "min_count": [int(p.counts.min()) for p in self.probes],
                "max_count": [int(p.counts.max()) for p in self.probes],
            }
        )

    def stats(self) -> dict:
        own = self._runner.stats()
        return {
            "n_leiden_calls": own["n_leiden_calls"] + self._worker_stats["n_leiden_calls"],
            "leiden_seconds": own["leiden_seconds"] + self._worker_stats["leiden_seconds"],
            "scoring_seconds": self.scoring_seconds,
            "n_probes": len(self.probes),
        }


class OptimizeContext:
    """Gives an :class:`~scice.strategies.Optimizer` seeded trial sets and their scores.

    Attributes
    ----------
    n_trials, n_iterations, beta, max_iterations
        The estimator's trial parameters.
    objective_function
        ``"CPM"`` or ``"modularity"``.
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
    ):
        self._runner = runner
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
        return self._runner.run(gamma, self._seeds.trials[: self.n_trials], self.n_iterations, self.beta)

    def refine(self, trial_set: TrialSet, round_index: int, n_iterations: int = 2) -> TrialSet:
        """Continue every trial from its own labels for ``n_iterations`` more iterations.

        ``round_index`` (1-based) selects the round's seeds, so a refinement chain
        depends only on its resolution and round.
        """
        seeds = self._seeds.refine_seeds(round_index, trial_set.n_trials)
        return self._runner.run(trial_set.gamma, seeds, n_iterations, self.beta, start=trial_set)

    def score(self, trial_set: TrialSet) -> TrialSetScore:
        """The scorer's view of ``trial_set`` (computed once per trial set)."""
        cached = self._scores.get(trial_set.key)
        if cached is None:
            t0 = time.perf_counter()
            cached = self._scorer.score(trial_set.labelings)
            self.scoring_seconds += time.perf_counter() - t0
            self._scores[trial_set.key] = cached
        return cached
