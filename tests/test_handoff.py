"""leiden_params: sc.tl.leiden reproduces scice's partitions (run on scanpy 1.11 and 1.12)."""

from __future__ import annotations

import random
import warnings
from importlib.metadata import version

import anndata as ad
import igraph as ig
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

import scice
from scice._handoff import leiden_params, scanpy_edge_multiplicity
from scice.testing import make_blob_graph

sc = pytest.importorskip("scanpy")

THRESHOLD = 1.005


@pytest.fixture(scope="module")
def pbmc_range_fit():
    """A real cluster-range fit on pbmc68k_reduced, targets 2..10 (~30 s)."""
    adata = sc.datasets.pbmc68k_reduced()
    est = scice.SCICE(cluster_range=(2, 10), n_trials=8, n_bootstrap=30, random_state=0).fit(adata)
    return adata, est.results_


def _installed_multiplicity() -> int:
    preset = getattr(sc.settings, "preset", None)
    return scanpy_edge_multiplicity(version("scanpy"), None if preset is None else str(preset.value))


def _sc_leiden_labels(adata, kwargs: dict) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sc.tl.leiden(adata, key_added="handoff", **kwargs)
    return adata.obs["handoff"].cat.codes.to_numpy()


def _igraph_labels(graph: ig.Graph, kwargs: dict) -> np.ndarray:
    """What sc.tl.leiden(flavor="igraph") does with its graph, called on igraph directly."""
    args = {k: kwargs[k] for k in ("objective_function", "resolution", "beta", "n_iterations")}
    return np.asarray(graph.community_leiden(weights="weight", **args).membership)


def test_sc_leiden_reproduces_every_consistent_count(pbmc_range_fit):
    adata, results = pbmc_range_fit
    consistent = results.consistent(THRESHOLD).tolist()
    assert len(consistent) >= 5, f"pbmc68k_reduced should have several consistent counts, got {consistent}"
    adata = adata.copy()
    for k in consistent:
        kwargs = leiden_params(results[k], results.params)
        labels = _sc_leiden_labels(adata, kwargs)
        ari = adjusted_rand_score(results[k].best_labels, labels)
        assert ari >= 0.99, f"k={k}: ARI {ari:.4f} with {kwargs}"


def test_the_conversion_is_needed_on_the_installed_scanpy(pbmc_range_fit):
    """Passing gamma unchanged gives other partitions when scanpy doubles the edges."""
    if _installed_multiplicity() != 2:
        pytest.skip("this scanpy builds each edge once")
    adata, results = pbmc_range_fit
    adata = adata.copy()
    aris = []
    for k in results.consistent(THRESHOLD).tolist():
        kwargs = leiden_params(results[k], results.params)
        kwargs["resolution"] = results[k].gamma
        aris.append(adjusted_rand_score(results[k].best_labels, _sc_leiden_labels(adata, kwargs)))
    assert min(aris) < 0.9


def test_rule_matches_the_graph_the_installed_scanpy_builds():
    from scanpy import _utils as sc_utils

    adjacency = sp.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 0.5], [0, 0.5, 0]]))
    graph = sc_utils.get_igraph_from_adjacency(adjacency, directed=False)
    assert graph.ecount() == 2 * _installed_multiplicity()


@pytest.mark.parametrize(
    ("scanpy_version", "preset", "multiplicity"),
    [("1.11.5", None, 2), ("1.12.4", None, 2), ("1.13.0a2", "scanpy-v2-preview", 1), ("1.13.0", "scanpy-v1", 2)],
)
def test_both_graph_constructions_reproduce_the_partition(pbmc_range_fit, scanpy_version, preset, multiplicity):
    """Build each scanpy line's graph as its get_igraph_from_adjacency does, run the kwargs on it."""
    adata, results = pbmc_range_fit
    adjacency = adata.obsp["connectivities"]
    if multiplicity == 2:  # scanpy <= 1.12, and 1.13's default preset: one edge per stored entry
        sources, targets = adjacency.nonzero()
        graph = ig.Graph(n=adjacency.shape[0], edges=list(zip(sources, targets, strict=True)), directed=False)
        graph.es["weight"] = np.asarray(adjacency[sources, targets]).ravel()
    else:  # scanpy 1.13 with the v2 preview preset
        graph = ig.Graph.Weighted_Adjacency(sp.coo_matrix(adjacency), mode=ig.ADJ_UNDIRECTED)
    assert graph.ecount() == multiplicity * sp.triu(adjacency, k=1).nnz
    ig.set_random_number_generator(random.Random(0))
    try:
        for k in results.consistent(THRESHOLD).tolist():
            kwargs = leiden_params(results[k], results.params, scanpy_version, preset=preset)
            ari = adjusted_rand_score(results[k].best_labels, _igraph_labels(graph, kwargs))
            assert ari >= 0.99, f"{scanpy_version} {preset} k={k}: ARI {ari:.4f}"
    finally:
        ig.set_random_number_generator(random)


def test_modularity_resolution_passes_unchanged():
    matrix = make_blob_graph(n_blobs=4, size=40, seed=1)
    adata = ad.AnnData(obs={"cell": [f"c{i}" for i in range(matrix.shape[0])]})
    adata.obsp["connectivities"] = matrix
    results = (
        scice.SCICE(cluster_range=(2, 4), objective_function="modularity", n_trials=6, n_bootstrap=10, random_state=0)
        .fit(adata)
        .results_
    )
    assert len(results.consistent(THRESHOLD)) >= 1
    for k in results.consistent(THRESHOLD).tolist():
        kwargs = leiden_params(results[k], results.params)
        assert kwargs["resolution"] == results[k].gamma
        ari = adjusted_rand_score(results[k].best_labels, _sc_leiden_labels(adata, kwargs))
        assert ari >= 0.99, f"k={k}: ARI {ari:.4f}"


def test_kwargs_content(pbmc_fit):
    result = pbmc_fit.results_[pbmc_fit.results_.n_cluster[0]]
    params = pbmc_fit.results_.params
    kwargs = leiden_params(result, params, "1.12.4")
    assert kwargs == {
        "flavor": "igraph",
        "objective_function": "CPM",
        "resolution": 2 * result.gamma,
        "n_iterations": result.n_iter,
        "directed": False,
        "use_weights": True,
        "beta": params["beta"],
        "obsp": "connectivities",
        "random_state": 0,
    }
    newer = leiden_params(result, params, "1.13.0a2", preset="scanpy-v2-preview")
    assert newer["resolution"] == result.gamma and newer["rng"] == 0 and "random_state" not in newer
    assert leiden_params(result, params, "2.0.0")["resolution"] == result.gamma
    bare = leiden_params(result, {**params, "beta": float("nan"), "graph_key": ""}, "1.11.5")
    assert "beta" not in bare and "obsp" not in bare


@pytest.mark.parametrize(
    ("scanpy_version", "preset", "expected"),
    [
        ("1.11.5", None, 2),
        ("1.12.0rc1", None, 2),
        ("1.13.0a1", None, 2),
        ("1.13.0a1", "scanpy-v1", 2),
        ("1.13.0a1", "scanpy-v2-preview", 1),
        ("1.12.4", "scanpy-v2-preview", 2),  # no presets before 1.13
        ("2.0.0", None, 1),
    ],
)
def test_edge_multiplicity_table(scanpy_version, preset, expected):
    assert scanpy_edge_multiplicity(scanpy_version, preset) == expected


def test_bad_input(pbmc_fit):
    result = pbmc_fit.results_[pbmc_fit.results_.n_cluster[0]]
    with pytest.raises(TypeError, match="ClusterResult"):
        leiden_params(pbmc_fit.results_, pbmc_fit.results_.params)
    with pytest.raises(ValueError, match="objective_function"):
        leiden_params(result, {"objective_function": "significance"}, "1.12.4")
    with pytest.raises(ValueError, match="scanpy_version"):
        leiden_params(result, pbmc_fit.results_.params, "latest")
