"""scice.tl.scice: scanpy's tool contract, the graph chosen like sc.tl.leiden, aligned label columns."""

from __future__ import annotations

import logging
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scice
from scice.testing import make_blob_graph

FAST = {"n_trials": 8, "n_bootstrap": 30}


@pytest.fixture(scope="module")
def pbmc_tl(pbmc):
    """pbmc68k_reduced after scice.tl.scice(cluster_range=(2, 6)) under key "sc" (~2 s)."""
    adata = pbmc.copy()
    assert scice.tl.scice(adata, cluster_range=(2, 6), key_added="sc", random_state=0, **FAST) is None
    return adata


def _label_columns(adata, key):
    return sorted((c for c in adata.obs if re.fullmatch(rf"{key}_k\d+", c)), key=lambda c: int(c.rsplit("k", 1)[1]))


def test_in_place_writes_uns_and_obs(pbmc_tl, pbmc_fit):
    adata = pbmc_tl
    results = scice.legacy.from_legacy_dict(adata.uns["sc"])
    # the same fit as the estimator's (same graph, parameters and seed)
    np.testing.assert_array_equal(results.ic, pbmc_fit.results_.ic)
    assert adata.uns["sc"]["params"]["graph_key"] == "connectivities"
    consistent = results.consistent().tolist()
    assert consistent and _label_columns(adata, "sc") == [f"sc_k{k}" for k in consistent]
    for k in consistent:
        column = adata.obs[f"sc_k{k}"]
        assert isinstance(column.dtype, pd.CategoricalDtype)
        categories = list(column.cat.categories)
        assert categories == sorted(categories, key=int) and all(isinstance(c, str) for c in categories)
        assert column.nunique() == k
        mei = adata.obs[f"sc_mei_k{k}"]
        assert mei.dtype == np.float64
        np.testing.assert_array_equal(mei.to_numpy(), results[k].mei)
        # the same partition as scice's representative labeling, only renumbered
        table = pd.crosstab(column.to_numpy(), results[k].best_labels)
        assert ((table > 0).sum(axis=1) == 1).all() and ((table > 0).sum(axis=0) == 1).all()
    assert "sc_isolated" not in adata.obs  # pbmc68k_reduced has no cell without an edge


def test_ids_keep_their_meaning_along_k(pbmc_tl):
    columns = _label_columns(pbmc_tl, "sc")
    for previous, current in zip(columns[:-1], columns[1:], strict=False):
        same = (pbmc_tl.obs[previous].astype(str) == pbmc_tl.obs[current].astype(str)).mean()
        assert same >= 0.7, f"{previous} -> {current}: only {same:.0%} of cells keep their id"
    # one split per step on this nested sequence: each count adds exactly one new id
    for previous, current in zip(columns[:-1], columns[1:], strict=False):
        new = set(pbmc_tl.obs[current].cat.categories) - set(pbmc_tl.obs[previous].cat.categories)
        assert len(new) == 1


def test_ids_are_those_of_get_labels_and_get_robust_labels(pbmc_tl):
    table = scice.get.labels(pbmc_tl, key="sc")
    robust = scice.get_robust_labels(pbmc_tl, key="sc")
    for k in table.columns:
        np.testing.assert_array_equal(pbmc_tl.obs[f"sc_k{k}"].astype(int).to_numpy(), table[k].to_numpy())
        np.testing.assert_array_equal(robust[f"scICE_k_{k}"].astype(int).to_numpy(), table[k].to_numpy())


def test_copy_returns_a_new_anndata_and_leaves_the_input(pbmc):
    adata = pbmc.copy()
    before = (set(adata.obs.columns), set(adata.uns.keys()))
    out = scice.tl.scice(adata, resolution=[0.001, 0.003], copy=True, **FAST)
    assert isinstance(out, ad.AnnData) and out is not adata
    assert (set(adata.obs.columns), set(adata.uns.keys())) == before
    assert "scICE" in out.uns and any(c.startswith("scICE_k") for c in out.obs)


def test_rerun_removes_columns_of_counts_no_longer_consistent(pbmc):
    adata = pbmc.copy()
    scice.tl.scice(adata, resolution=[0.001, 0.003], **FAST)
    first = set(_label_columns(adata, "scICE"))
    assert first
    scice.tl.scice(adata, resolution=[0.001], **FAST)
    (only,) = _label_columns(adata, "scICE")
    assert only in first and not [c for c in adata.obs if c.startswith("scICE_mei_k") and c != f"scICE_mei_{only[6:]}"]


def _two_graph_adata():
    blobs = make_blob_graph(n_blobs=3, size=30, seed=0)
    other = make_blob_graph(n_blobs=5, size=18, seed=1)
    adata = ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(blobs.shape[0])]))
    adata.obsp["connectivities"] = blobs
    adata.obsp["other_connectivities"] = other
    adata.uns["other"] = {"connectivities_key": "other_connectivities", "params": {}}
    return adata


@pytest.mark.parametrize(
    ("kwargs", "graph"),
    [
        ({}, "connectivities"),
        ({"obsp": "other_connectivities"}, "other_connectivities"),
        ({"neighbors_key": "other"}, "other_connectivities"),
    ],
)
def test_graph_is_chosen_like_sc_tl_leiden(kwargs, graph):
    adata = _two_graph_adata()
    scice.tl.scice(adata, cluster_range=(2, 6), **kwargs, **FAST)
    assert adata.uns["scICE"]["params"]["graph_key"] == graph
    # three blobs of 30 cells on the default graph, five of 18 on the other: the labels tell which was clustered
    n_blobs, size = (3, 30) if graph == "connectivities" else (5, 18)
    table = pd.crosstab(adata.obs[f"scICE_k{n_blobs}"].to_numpy(), np.arange(adata.n_obs) // size)
    assert ((table > 0).sum(axis=1) == 1).all() and table.shape == (n_blobs, n_blobs)


def test_bad_input():
    adata = _two_graph_adata()
    with pytest.raises(ValueError, match="only one of obsp= and neighbors_key="):
        scice.tl.scice(adata, cluster_range=(2, 4), obsp="connectivities", neighbors_key="other")
    with pytest.raises(KeyError, match=r"obsp='nope' is not in adata.obsp .*connectivities"):
        scice.tl.scice(adata, cluster_range=(2, 4), obsp="nope")
    with pytest.raises(KeyError, match=r"neighbors_key='nope'.*sc.pp.neighbors"):
        scice.tl.scice(adata, cluster_range=(2, 4), neighbors_key="nope")
    with pytest.raises(TypeError, match=r"Unknown parameter\(s\) \['n_trails'\].*n_trials"):
        scice.tl.scice(adata, cluster_range=(2, 4), n_trails=5)
    with pytest.raises(TypeError, match="not graph_key="):
        scice.tl.scice(adata, cluster_range=(2, 4), graph_key="connectivities")
    with pytest.raises(TypeError, match="key_added must be a non-empty string"):
        scice.tl.scice(adata, cluster_range=(2, 4), key_added="")
    with pytest.raises(TypeError, match="must be an AnnData"):
        scice.tl.scice(adata.obsp["connectivities"], cluster_range=(2, 4))
    del adata.obsp["connectivities"]
    with pytest.raises(KeyError, match=r"No graph adata.obsp\['connectivities'\].*sc.pp.neighbors"):
        scice.tl.scice(adata, cluster_range=(2, 4))
    assert "scICE" not in adata.uns


def test_isolated_cells_get_a_column():
    matrix = sp.lil_matrix(make_blob_graph(n_blobs=3, size=30, seed=0))
    for cell in (0, 45):
        matrix[cell, :] = 0
        matrix[:, cell] = 0
    adata = ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(matrix.shape[0])]))
    adata.obsp["connectivities"] = sp.csr_matrix(matrix)
    with pytest.warns(UserWarning, match="2 of 90 cells have no edges"):
        scice.tl.scice(adata, cluster_range=(2, 4), key_added="iso", **FAST)
    assert adata.obs["iso_isolated"].dtype == bool
    assert np.flatnonzero(adata.obs["iso_isolated"].to_numpy()).tolist() == [0, 45]


def test_log_line(pbmc, caplog):
    adata = pbmc.copy()
    with caplog.at_level(logging.INFO, logger="scice"):
        scice.tl.scice(adata, resolution=[0.001, 0.003], key_added="lg", **FAST)
    (line,) = [r.getMessage() for r in caplog.records if "finished" in r.getMessage()]
    k = _label_columns(adata, "lg")
    assert line.startswith(f"    finished: found {len(k)} consistent cluster counts")
    assert "'lg', the results (adata.uns)" in line and all(f"'{c}'" in line for c in k)
