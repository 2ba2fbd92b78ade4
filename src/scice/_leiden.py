"""Seeded batches of Leiden trials; this code runs inside worker processes.

A trial seeds igraph's generator itself (``igraph.set_random_number_generator``
with a ``random.Random(seed)``) and restores the default afterwards. igraph's
generator is shared per thread, so this is the only way to make a trial depend on
its seed alone, wherever and in whatever order it runs.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import igraph as ig
import numpy as np

from ._graph import GraphData, to_igraph
from ._merge import effective_counts
from ._similarity import smallest_int_dtype

__all__ = ["LeidenConfig", "TrialSet", "TrialRunner", "get_igraph"]

# token -> igraph.Graph, per process: a worker builds each graph once.
_GRAPH_CACHE: OrderedDict[str, object] = OrderedDict()
_GRAPH_CACHE_SIZE = 2


def get_igraph(graph: GraphData):
    """The igraph object for ``graph``, built once per process."""
    g = _GRAPH_CACHE.get(graph.token)
    if g is None:
        g = to_igraph(graph)
        _GRAPH_CACHE[graph.token] = g
        while len(_GRAPH_CACHE) > _GRAPH_CACHE_SIZE:
            _GRAPH_CACHE.popitem(last=False)
    else:
        _GRAPH_CACHE.move_to_end(graph.token)
    return g


@dataclass(frozen=True)
class LeidenConfig:
    """What every Leiden trial of a run shares."""

    objective_function: str = "CPM"
    min_cluster_size: int = 2


@dataclass(frozen=True, eq=False)
class TrialSet:
    """The labelings of one set of seeded trials at one resolution.

    ``key`` identifies how the labelings were produced, so equal keys mean equal
    labelings (it is used for caching and for refinement chains).
    """

    gamma: float
    labelings: np.ndarray
    effective_counts: np.ndarray
    n_iterations: int
    key: tuple = field(repr=False)

    @property
    def median_count(self) -> float:
        return float(np.median(self.effective_counts))

    @property
    def n_trials(self) -> int:
        return int(self.labelings.shape[0])


class TrialRunner:
    """Runs seeded Leiden trials on one graph and keeps timing and call counts.

    Parameters
    ----------
    graph
        The validated graph.
    config
        Objective function and minimum cluster size.
    cache_bytes
        Budget for remembered trial sets; a repeated request (same gamma, seeds,
        iterations, beta and starting labels) is answered from memory.
    """

    def __init__(self, graph: GraphData, config: LeidenConfig, cache_bytes: int = 256 * 2**20):
        self.graph = graph
        self.config = config
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple, TrialSet] = OrderedDict()
        self._cache_used = 0
        self.n_calls = 0
        self.n_cache_hits = 0
        self.leiden_seconds = 0.0

    # -- public -----------------------------------------------------------
    def run(
        self,
        gamma: float,
        seeds: np.ndarray,
        n_iterations: int,
        beta: float,
        start: TrialSet | None = None,
    ) -> TrialSet:
        """Run one trial per seed at ``gamma``.

        With ``start``, trial t continues from ``start``'s labeling t (igraph's
        ``initial_membership``) for ``n_iterations`` more iterations.
        """
        seeds = np.asarray(seeds, dtype=np.int64)
        key = (
            float(gamma),
            float(beta),
            int(n_iterations),
            seeds.tobytes(),
            None if start is None else start.key,
        )
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self.n_cache_hits += 1
            return hit
        g = get_igraph(self.graph)
        labelings = np.empty((seeds.size, self.graph.n_vertices), dtype=np.int64)
        t0 = time.perf_counter()
        try:
            for t, seed in enumerate(seeds):
                ig.set_random_number_generator(random.Random(int(seed)))
                initial = None if start is None else start.labelings[t].tolist()
                part = g.community_leiden(
                    objective_function=self.config.objective_function,
                    weights="weight",
                    resolution=float(gamma),
                    beta=float(beta),
                    n_iterations=int(n_iterations),
                    initial_membership=initial,
                )
                labelings[t] = part.membership
        finally:
            ig.set_random_number_generator(random)
        self.leiden_seconds += time.perf_counter() - t0
        self.n_calls += int(seeds.size)
        labelings = labelings.astype(smallest_int_dtype(int(labelings.max(initial=0))))
        total_iterations = int(n_iterations) + (0 if start is None else start.n_iterations)
        trial_set = TrialSet(
            gamma=float(gamma),
            labelings=labelings,
            effective_counts=effective_counts(labelings, self.config.min_cluster_size),
            n_iterations=total_iterations,
            key=key,
        )
        self._remember(key, trial_set)
        return trial_set

    def stats(self) -> dict:
        return {
            "n_leiden_calls": self.n_calls,
            "n_cache_hits": self.n_cache_hits,
            "leiden_seconds": self.leiden_seconds,
        }

    # -- private ----------------------------------------------------------
    def _remember(self, key: tuple, trial_set: TrialSet) -> None:
        size = trial_set.labelings.nbytes
        if size > self.cache_bytes:
            return
        self._cache[key] = trial_set
        self._cache_used += size
        while self._cache_used > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cache_used -= old.labelings.nbytes
