"""The one AnnData adapter: one rule for what an AnnData is, and results from every accepted input."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import scice
from scice._anndata import check_cells_match, coerce_results, is_anndata, results_from
from scice._graph import graph_from_input
from scice.legacy import to_legacy_dict, write_uns

anndata = pytest.importorskip("anndata")


class _LooksLikeAnnData:
    """Has every attribute the old duck-typing rules looked at, but is no AnnData."""

    def __init__(self, adata):
        self.obs, self.obs_names, self.obsp, self.obsm = adata.obs, adata.obs_names, adata.obsp, adata.obsm
        self.uns: dict = {}


class _MyAnnData(anndata.AnnData):
    pass


def test_is_anndata_is_isinstance(pbmc):
    assert is_anndata(pbmc) and is_anndata(pbmc[:10]) and is_anndata(_MyAnnData(pbmc.copy()))
    for other in ({}, pbmc.obsp["connectivities"], pbmc.to_df(), _LooksLikeAnnData(pbmc), None):
        assert not is_anndata(other)


def test_every_entry_point_rejects_a_look_alike(pbmc, pbmc_fit):
    """Before the one rule, write_uns accepted what graph_from_input rejected."""
    fake = _LooksLikeAnnData(pbmc)
    with pytest.raises(TypeError, match="must be an AnnData object"):
        write_uns(fake, pbmc_fit.results_)
    assert fake.uns == {}
    with pytest.raises(TypeError, match="AnnData object or a square scipy.sparse"):
        graph_from_input(fake)
    with pytest.raises(TypeError, match="must be an AnnData object"):
        scice.scice_clustering(fake, cluster_range=(2, 3))
    with pytest.raises(TypeError, match="needs the AnnData"):
        scice.plot_stability(fake)
    with pytest.raises(TypeError, match="SCICEResults"):
        results_from(fake)


def test_a_subclass_is_fitted_like_an_anndata(pbmc):
    """graph_from_input used to accept only classes named exactly 'AnnData'."""
    sub = _MyAnnData(pbmc.copy())
    g = graph_from_input(sub)
    assert g.n_vertices == pbmc.n_obs
    np.testing.assert_array_equal(g.cell_names, np.asarray(pbmc.obs_names, dtype=object))


def test_is_anndata_does_not_import_anndata():
    code = (
        "import sys, scipy.sparse as sp, scice._graph as G; "
        "G.graph_from_input(sp.csr_matrix([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)); "
        "print(sorted(m for m in ('anndata', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_check_cells_match(pbmc, pbmc_fit):
    r = pbmc_fit.results_
    check_cells_match(pbmc, r, "do it")
    with pytest.raises(ValueError, match=r"Cannot do it: the cell names .* first at 0"):
        check_cells_match(pbmc[::-1], r, "do it")
    with pytest.raises(ValueError, match="700 cells but the AnnData has 10"):
        check_cells_match(pbmc[:10], r, "do it")
    nameless = dataclasses.replace(r, cell_names=None)
    check_cells_match(pbmc, nameless, "do it")
    with pytest.raises(ValueError, match="700 cells but the AnnData has 699"):
        check_cells_match(pbmc[1:], nameless, "do it")
    renamed = anndata.AnnData(obs=pd.DataFrame(index=[f"x{i}" for i in range(pbmc.n_obs)]))
    check_cells_match(renamed, nameless, "do it")


def test_coerce_results(pbmc_fit):
    r = pbmc_fit.results_
    assert coerce_results(r) is r
    assert coerce_results(pbmc_fit) is r
    assert coerce_results(to_legacy_dict(r)) == r
    with pytest.raises(ValueError, match="not fitted"):
        coerce_results(scice.SCICE(cluster_range=(2, 3)))
    with pytest.raises(TypeError, match="^thing must be a SCICEResults"):
        coerce_results([r], "thing")


def test_results_from_every_input(pbmc_copy, pbmc_fit):
    r = pbmc_fit.results_
    write_uns(pbmc_copy, r, key_added="mine")
    assert results_from(r) is r
    assert results_from(pbmc_fit) is r
    assert results_from(to_legacy_dict(r)) == r
    assert results_from(pbmc_copy, key="mine") == r
    with pytest.raises(KeyError, match="run scice.write_uns"):
        results_from(pbmc_copy)
    with pytest.raises(TypeError, match="SCICEResults"):
        results_from(42)
    pbmc_copy.uns["odd"] = "not a dict"
    with pytest.raises(TypeError, match="Expected the scICE result dictionary"):
        results_from(pbmc_copy, key="odd")
