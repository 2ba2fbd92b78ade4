"""Inputs that used to give silently wrong answers, and what "consistent" and "best" mean.

Each test failed on the code before the fix (checked): n_trials=1 reported IC 1 for every
count; resolution=[1e6] reported "1 cluster, IC 1" from all-singleton labelings; isolated
cells got mei 1.0 without a word; best_cluster was the smallest of the counts tied at IC 1.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import scice
from scice import SCICE
from scice.cli import main
from scice.testing import blob_graph, make_blob_graph

FAST = {"n_trials": 10, "n_bootstrap": 20, "random_state": 0}


def test_one_trial_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"n_trials must be at least 2.*cannot disagree with itself"):
        SCICE(cluster_range=(2, 4), n_trials=1).fit(blob_graph())


def test_few_trials_warn_that_the_ic_is_coarse():
    with pytest.warns(UserWarning, match=r"n_trials=4 gives a coarse IC"):
        SCICE(resolution=[0.05], n_trials=4, n_bootstrap=10, random_state=0).fit(blob_graph(bridge=2))


def test_cli_refuses_one_trial_before_any_work(tmp_path, capsys):
    import anndata as ad

    adata = ad.AnnData(np.zeros((160, 2), dtype=np.float32))
    adata.obsp["connectivities"] = blob_graph()
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    before = path.read_bytes()
    assert main(["run", str(path), "--cluster-range", "2", "4", "--n-trials", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scice: error: n_trials must be at least 2")
    assert path.read_bytes() == before


def test_a_shattering_resolution_is_no_result_not_one_cluster():
    graph = blob_graph(bridge=2)
    with pytest.warns(UserWarning, match=r"resolutions gave no result.*shatters the graph"):
        res = SCICE(resolution=[0.05, 1e6], **FAST).fit(graph).results_
    assert 1 not in res.n_cluster.tolist()
    rows = res.resolution_diagnostics.set_index("gamma")
    assert rows.loc[1e6, "status"] == "no_result" and "shatters the graph" in rows.loc[1e6, "reason"]
    assert rows.loc[0.05, "status"] == "returned"


def test_isolated_cells_are_flagged_not_silently_consistent():
    graph = sp.lil_matrix(blob_graph(bridge=2))
    n = graph.shape[0]
    big = sp.lil_matrix((n + 3, n + 3))
    big[:n, :n] = graph
    graph = big.tocsr()  # the last 3 cells have no edge
    with pytest.warns(UserWarning, match=r"3 of 163 cells have no edges"):
        res = SCICE(cluster_range=(2, 4), **FAST).fit(graph).results_
    for c in res.clusters:
        assert np.isnan(c.mei[-3:]).all() and not np.isnan(c.mei[:-3]).any()
    import anndata as ad

    adata = ad.AnnData(np.zeros((n + 3, 1), dtype=np.float32))
    adata.obsp["connectivities"] = graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SCICE(cluster_range=(2, 4), **FAST).fit(adata)
    scice.write_uns(adata, est.results_)
    df = scice.get_robust_labels(adata)
    assert df["scICE_isolated"].tolist() == [False] * n + [True] * 3


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (-1, ValueError, r"random_state must be an integer in \[0, 2\*\*32 - 1\]"),
        (2**40, ValueError, r"random_state must be an integer in \[0, 2\*\*32 - 1\]"),
        ("7", TypeError, r"random_state must be None, an integer"),
        (1.5, TypeError, r"random_state must be None, an integer"),
    ],
)
def test_bad_random_state_names_the_parameter(value, error, match):
    with pytest.raises(error, match=match):
        SCICE(cluster_range=(2, 4), random_state=value).fit(blob_graph())


def test_numpy_generator_is_a_random_state():
    graph = blob_graph(bridge=2)
    kw = {"resolution": [0.05, 0.2], "n_trials": 10, "n_bootstrap": 20}
    a = SCICE(random_state=np.random.default_rng(3), **kw).fit(graph).results_
    b = SCICE(random_state=np.random.default_rng(3), **kw).fit(graph).results_
    assert a == b


def test_min_cluster_size_above_the_cell_count_is_refused():
    with pytest.raises(ValueError, match=r"min_cluster_size=500 is larger than the number of cells \(160\)"):
        SCICE(cluster_range=(2, 4), min_cluster_size=500).fit(blob_graph())


def test_best_is_the_finest_consistent_count():
    graph = make_blob_graph(n_blobs=3, size=40, k=6, seed=0, n_bridges=3)
    res = SCICE(cluster_range=(2, 6), n_trials=8, n_bootstrap=20, random_state=0).fit(graph).results_
    consistent = res.consistent().tolist()
    assert res.ic_threshold == 1.005 and len(consistent) >= 2
    assert res.best_cluster == max(consistent)  # not the smallest of the counts tied at IC 1
    assert res[min(consistent)].ic == res[max(consistent)].ic == 1.0


@pytest.mark.slow
def test_pbmc_defaults_best_is_the_largest_consistent_count(pbmc):
    est = SCICE(cluster_range=(2, 10), random_state=0).fit(pbmc)
    res = est.results_
    consistent = res.consistent_clusters.tolist()
    assert 8 not in consistent and res[8].ic > 1.01  # k = 8: the trials split (IC ~1.03-1.04)
    assert est.best_cluster_ == max(consistent) == 10
    np.testing.assert_array_equal(est.labels_, res[10].best_labels)
