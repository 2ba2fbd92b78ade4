"""The search is scale-covariant: CPM on a graph whose weights are all multiplied by c
gives the same partitions at c times the resolution, so a fit must find the same counts,
ICs and labels at resolutions c times as large (issue: x1e-3 used to return nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from scice import SCICE
from scice.strategies import BisectionSearcher
from scice.testing import make_blob_graph

SCALES = [1e-6, 1e-3, 1e3, 1e6]


def _fit(graph, **kw):
    return SCICE(cluster_range=(2, 6), n_trials=8, n_bootstrap=20, random_state=0, **kw).fit(graph).results_


@pytest.fixture(scope="module")
def blocks():
    return make_blob_graph(n_blobs=3, size=40, k=6, seed=0, n_bridges=3)


@pytest.fixture(scope="module")
def reference(blocks):
    return _fit(blocks)


@pytest.mark.parametrize("c", SCALES)
def test_scaled_graph_gives_the_same_counts_ics_and_labels(blocks, reference, c):
    scaled = _fit(blocks * c)
    assert len(reference) >= 3
    assert scaled.n_cluster.tolist() == reference.n_cluster.tolist()
    np.testing.assert_array_equal(scaled.ic, reference.ic)
    np.testing.assert_allclose(scaled.gamma / c, reference.gamma, rtol=1e-9)
    for a, b in zip(scaled.clusters, reference.clusters, strict=True):
        np.testing.assert_array_equal(a.best_labels, b.best_labels)


@pytest.mark.slow
@pytest.mark.parametrize("c", SCALES)
def test_scaled_pbmc_gives_the_same_counts(pbmc, c):
    graph = pbmc.obsp["connectivities"]
    kw = {"cluster_range": (2, 10), "n_trials": 6, "n_bootstrap": 20, "random_state": 0}
    reference, scaled = SCICE(**kw).fit(graph).results_, SCICE(**kw).fit(graph * c).results_
    assert scaled.n_cluster.tolist() == reference.n_cluster.tolist() == list(range(2, 11))
    np.testing.assert_array_equal(scaled.ic, reference.ic)


def test_shattering_resolutions_count_as_above_every_target():
    # A start far above the useful range (every cell its own cluster) used to read as "0 clusters"
    # and end the search with nothing bracketed; it now counts as above and bisection goes down.
    graph = make_blob_graph(n_blobs=3, size=40, k=6, seed=0, n_bridges=3)
    res = _fit(graph, searcher=BisectionSearcher(start=1e3))
    assert 3 in res.n_cluster.tolist()
    probes = res.resolution_search_diagnostics
    assert probes["shattered"].any() and not probes["shattered"].all()
