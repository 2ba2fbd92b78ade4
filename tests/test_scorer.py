"""ECSScorer's similarity matrix is ICScorer's pairwise one, value for value."""

from __future__ import annotations

import random

import igraph
import numpy as np

from scice._graph import graph_from_input, to_igraph
from scice._similarity import ecs_matrix, inconsistency, unique_partitions
from scice.strategies import ECSScorer, ICScorer
from scice.testing import make_blob_graph


def _leiden_labelings(n_trials: int = 12) -> np.ndarray:
    """Labelings of real, seeded Leiden runs at a resolution where the seeds disagree."""
    g = to_igraph(graph_from_input(make_blob_graph(n_blobs=5, size=30, seed=4)))
    rows = []
    try:
        for seed in range(n_trials):
            igraph.set_random_number_generator(random.Random(seed))
            part = g.community_leiden(objective_function="CPM", resolution=0.2, weights="weight", n_iterations=1)
            rows.append(part.membership)
    finally:
        igraph.set_random_number_generator(random)
    return np.asarray(rows)


def test_ecs_similarity_matrix_is_the_base_pairwise_matrix():
    rng = np.random.default_rng(3)
    random_rows = np.stack([rng.integers(0, k, 150) for k in (2, 3, 3, 5, 8)])
    for labelings in (_leiden_labelings(), random_rows):
        partitions, counts, _ = unique_partitions(labelings)
        assert partitions.shape[0] > 2, "the trials should give several partitions"
        expected = ecs_matrix(partitions)
        base = ICScorer.similarity_matrix(ECSScorer(), partitions)
        assert base.dtype == np.float64 and np.array_equal(base, expected)
        assert np.array_equal(ECSScorer().similarity_matrix(partitions), expected)
        assert ECSScorer().score(labelings).ic == inconsistency(counts / counts.sum(), expected)
