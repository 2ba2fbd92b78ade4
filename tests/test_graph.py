"""Graph validation and conversion to igraph."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from scice._graph import graph_from_input, to_igraph


def test_upper_triangle_edges_with_weights(blobs):
    g = graph_from_input(blobs, "connectivities")
    upper = sp.triu(blobs, k=1).tocoo()
    assert g.n_vertices == blobs.shape[0]
    assert g.n_edges == upper.nnz
    assert np.all(g.sources < g.targets)
    got = sp.coo_matrix((g.weights, (g.sources, g.targets)), shape=blobs.shape).toarray()
    np.testing.assert_array_equal(got, upper.toarray())
    ig_graph = to_igraph(g)
    assert not ig_graph.is_directed()
    assert ig_graph.ecount() == upper.nnz
    assert np.isclose(sum(ig_graph.es["weight"]), upper.sum())


def test_anndata_input_and_cell_names(pbmc):
    g = graph_from_input(pbmc, "connectivities")
    assert g.n_vertices == pbmc.n_obs
    assert list(g.cell_names) == list(pbmc.obs_names)


def test_same_graph_same_token_different_graph_different_token(blobs):
    a = graph_from_input(blobs, "connectivities")
    b = graph_from_input(blobs.copy(), "connectivities")
    assert a.token == b.token
    c = blobs.copy()
    c.data = c.data * 2
    assert graph_from_input(c, "connectivities").token != a.token


def test_missing_key_lists_available_keys(pbmc):
    with pytest.raises(KeyError, match=r"'knn'.*available keys: 'connectivities', 'distances'\)"):
        graph_from_input(pbmc, "knn")


def test_non_square():
    with pytest.raises(ValueError, match="square"):
        graph_from_input(sp.random(5, 6, density=0.5, format="csr", random_state=0), "connectivities")


def test_non_symmetric():
    a = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float))
    with pytest.raises(ValueError, match=r"not symmetric.*A.maximum\(A.T\)"):
        graph_from_input(a, "connectivities")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_weights(bad):
    a = np.array([[0, 1, 1], [1, 0, bad], [1, bad, 0]], dtype=float)
    with pytest.raises(ValueError, match="NaN or infinite"):
        graph_from_input(sp.csr_matrix(a), "connectivities")


def test_negative_weights():
    a = np.array([[0, -1, 1], [-1, 0, 1], [1, 1, 0]], dtype=float)
    with pytest.raises(ValueError, match="negative weight"):
        graph_from_input(sp.csr_matrix(a), "connectivities")


def test_empty_graph():
    with pytest.raises(ValueError, match="no edges"):
        graph_from_input(sp.csr_matrix((5, 5)), "connectivities")


def test_too_few_cells():
    with pytest.raises(ValueError, match="at least 3 cells"):
        graph_from_input(sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=float)), "connectivities")


def test_wrong_type():
    with pytest.raises(TypeError, match="AnnData object or a square scipy.sparse"):
        graph_from_input("graph.h5ad", "connectivities")


def test_self_loops_are_ignored_with_a_warning(blobs):
    looped = blobs.tolil()
    looped.setdiag(1.0)
    with pytest.warns(UserWarning, match="self loop"):
        g = graph_from_input(looped.tocsr(), "connectivities")
    assert g.n_edges == sp.triu(blobs, k=1).nnz


def test_anndata_graph_key(blobs):
    adata = ad.AnnData(obs={"x": np.arange(blobs.shape[0])})
    adata.obsp["my_graph"] = blobs
    g = graph_from_input(adata, "my_graph")
    assert g.n_edges == sp.triu(blobs, k=1).nnz
