"""Graph edge cases with real (small) SCICE fits, and bad input (design brief, section 4).

Every fit here runs real igraph Leiden on a graph of at most ~70 cells with
3-5 trials and 10 bootstrap draws.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

import scice
from scice._graph import graph_from_input
from scice._results import deep_equal
from scice.testing import blob_graph

FIT_DEFAULTS = {"n_trials": 4, "n_bootstrap": 10, "random_state": 0}


def fit(X, **params):
    return scice.SCICE(**{**FIT_DEFAULTS, **params}).fit(X)


def fit_quiet(X, **params):
    """Fit and return (estimator, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = fit(X, **params)
    return est, [str(w.message) for w in caught]


def assert_same_results(r1, r2):
    """Equal in everything a run produces except timings (which always differ) and cell names."""
    assert r1.clusters == r2.clusters
    assert r1.uncovered_targets == r2.uncovered_targets
    assert r1.search_coverage_complete == r2.search_coverage_complete
    for name in (
        "target_diagnostics",
        "resolution_search_diagnostics",
        "optimization_diagnostics",
        "resolution_diagnostics",
    ):
        assert deep_equal(getattr(r1, name), getattr(r2, name)), name


def assert_valid_results(est, n_cells, min_cluster_size=2):
    """Structural checks that hold for any fit."""
    res = est.results_
    requested = set(res.requested_cluster_range.tolist()) if res.requested_cluster_range is not None else set()
    for c in res:
        labels = np.asarray(c.best_labels)
        assert labels.shape == (n_cells,)
        sizes = np.bincount(labels.astype(np.int64))
        assert sizes.size == c.n_cluster and np.all(sizes > 0)
        assert sizes.min() >= min(min_cluster_size, n_cells) or c.n_cluster == 1
        assert c.ic >= 1.0 - 1e-12 and np.all(c.ic_vec >= 1.0 - 1e-12)
        isolated = np.isnan(c.mei)  # cells without edges: their consistency is undefined
        assert np.all((c.mei[~isolated] >= 0) & (c.mei[~isolated] <= 1 + 1e-12))
    # Every requested target is either a final count or uncovered with a reason.
    for k in requested:
        assert (k in res.n_cluster.tolist()) != (k in res.uncovered_targets)
        if k in res.uncovered_targets:
            assert res.uncovered_targets[k].strip()


def triangles(n_groups: int, bridge: float = 0.0) -> sp.csr_matrix:
    """``n_groups`` unit-weight triangles, optionally chained by edges of weight ``bridge``."""
    n = 3 * n_groups
    rows, cols, vals = [], [], []
    for g in range(n_groups):
        a, b, c = 3 * g, 3 * g + 1, 3 * g + 2
        rows += [a, a, b]
        cols += [b, c, c]
        vals += [1.0, 1.0, 1.0]
        if bridge and g + 1 < n_groups:
            rows.append(c)
            cols.append(c + 1)
            vals.append(bridge)
    upper = sp.coo_matrix((vals, (rows, cols)), shape=(n, n))
    return (upper + upper.T).tocsr()


def weighted_ring(n: int = 12, seed: int = 3) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    upper = sp.coo_matrix((rng.uniform(0.2, 1.0, n), (rows, (rows + 1) % n)), shape=(n, n))
    return (upper + upper.T).tocsr()


@pytest.fixture(scope="module")
def three_blobs():
    """Three disconnected groups of 20 cells."""
    return blob_graph(3, 20, k=5, seed=1)


@pytest.fixture(scope="module")
def bridged():
    """Three groups of 20 cells joined by weak bridges (connected)."""
    return blob_graph(3, 20, k=5, seed=1, bridge=2)


@pytest.fixture(scope="module")
def bridged_fit(bridged):
    return fit(bridged, cluster_range=(2, 4))


# ---------------------------------------------------------------------------
# Disconnected graphs
# ---------------------------------------------------------------------------
class TestDisconnected:
    def test_isolated_cells_join_the_largest_cluster(self, three_blobs):
        A = sp.block_diag([three_blobs, sp.csr_matrix((5, 5))]).tocsr()  # + 5 isolated cells
        n = A.shape[0]
        est, messages = fit_quiet(A, cluster_range=(3, 5))
        assert not any("No cluster count" in m for m in messages)
        assert len(est.results_) >= 1
        assert_valid_results(est, n)
        _, component = connected_components(A, directed=False)
        isolated = np.arange(60, 65)
        for c in est.results_:
            labels = np.asarray(c.best_labels)
            # min_cluster_size=2: isolated cells are merged into the largest cluster, label 0.
            assert np.all(labels[isolated] == 0)
            assert np.bincount(labels)[0] == np.bincount(labels).max()
            # Apart from the merged isolated cells, no cluster spans two components.
            for k in range(c.n_cluster):
                members = np.setdiff1d(np.flatnonzero(labels == k), isolated)
                assert np.unique(component[members]).size == 1

    def test_isolated_cells_count_with_min_cluster_size_one(self, three_blobs):
        A = sp.block_diag([three_blobs, sp.csr_matrix((5, 5))]).tocsr()
        est = fit(A, cluster_range=[4, 7, 9], min_cluster_size=1)
        assert_valid_results(est, A.shape[0], min_cluster_size=1)
        # 3 groups + 5 singleton components = 8 clusters at the smallest resolution.
        for k in (4, 7):
            assert k in est.results_.uncovered_targets
            assert "components" in est.results_.uncovered_targets[k]
        for c in est.results_:
            assert c.n_cluster >= 8

    def test_many_components(self):
        A = blob_graph(8, 6, k=3, seed=2)  # 8 components of 6 cells
        assert connected_components(A)[0] == 8
        est = fit(A, cluster_range=(9, 10))
        assert_valid_results(est, 48)
        assert est.results_.n_cluster.tolist() and set(est.results_.n_cluster.tolist()) <= {9, 10}

    def test_manual_resolution_on_disconnected_graph(self, three_blobs):
        A = sp.block_diag([three_blobs, sp.csr_matrix((5, 5))]).tocsr()
        est = fit(A, resolution=[1e-4, 0.3])
        assert est.results_.analysis_mode == "resolution"
        assert_valid_results(est, A.shape[0])
        # A tiny resolution gives one cluster per component (+ isolated cells merged): 3, IC 1.
        low = [c for c in est.results_ if c.gamma == 1e-4]
        assert low and low[0].n_cluster == 3 and low[0].ic == 1.0

    def test_target_equal_to_number_of_components_is_covered(self, three_blobs):
        est = fit(three_blobs, cluster_range=(3, 4))
        assert 3 in est.results_.n_cluster.tolist()


# ---------------------------------------------------------------------------
# Graph representation: self loops, duplicates, dtypes, dense, AnnData
# ---------------------------------------------------------------------------
class TestGraphRepresentations:
    def test_self_loops_warn_and_are_ignored(self, bridged, bridged_fit):
        looped = bridged.tolil()
        looped.setdiag(1.0)
        looped = looped.tocsr()
        before = looped.copy()
        with pytest.warns(UserWarning, match=r"60 self loop\(s\) on the diagonal; they are ignored"):
            est = fit(looped, cluster_range=(2, 4))
        assert_same_results(est.results_, bridged_fit.results_)
        # graph_from_input drops the diagonal: same edge list as the loop-free graph.
        with pytest.warns(UserWarning, match="self loop"):
            g = graph_from_input(looped)
        assert g.token == graph_from_input(bridged).token
        assert np.all(g.sources < g.targets)
        # The caller's matrix is untouched.
        assert (looped != before).nnz == 0 and looped.diagonal().sum() == 60

    def test_only_self_loops_is_an_empty_graph(self):
        with pytest.warns(UserWarning, match="self loop"):
            with pytest.raises(ValueError, match="no edges between distinct cells"):
                fit(sp.identity(5, format="csr"), cluster_range=(2, 3))

    def test_duplicate_coo_entries_are_summed_like_scipy(self, bridged, bridged_fit):
        coo = bridged.tocoo()
        # Every edge split into three parts (1/4, 1/4, 1/2): dyadic, so the sums are exact.
        data = np.concatenate([coo.data / 4, coo.data / 4, coo.data / 2])
        rows = np.tile(coo.row, 3)
        cols = np.tile(coo.col, 3)
        dup = sp.coo_matrix((data, (rows, cols)), shape=coo.shape)
        assert dup.nnz == 3 * coo.nnz
        # scipy's own conversion sums duplicates; scice matches that equivalent CSR exactly.
        assert (dup.tocsr() != bridged).nnz == 0
        assert graph_from_input(dup).token == graph_from_input(bridged).token
        assert_same_results(fit(dup, cluster_range=(2, 4)).results_, bridged_fit.results_)
        assert dup.nnz == 3 * coo.nnz  # the input was not summed in place

    def test_duplicate_entries_in_non_canonical_csr(self, bridged):
        coo = bridged.tocoo()
        order = np.argsort(coo.row, kind="stable")
        rows, cols, vals = coo.row[order], coo.col[order], coo.data[order]
        # Each stored entry twice, half weight each, in an unsorted, duplicated CSR.
        indptr = np.concatenate([[0], np.cumsum(2 * np.bincount(rows, minlength=bridged.shape[0]))])
        indices = np.repeat(cols, 2)
        data = np.repeat(vals / 2, 2)
        messy = sp.csr_matrix((data, indices, indptr), shape=bridged.shape)
        assert not messy.has_canonical_format
        kept = (messy.data.copy(), messy.indices.copy())
        assert graph_from_input(messy).token == graph_from_input(bridged).token
        np.testing.assert_array_equal(messy.data, kept[0])
        np.testing.assert_array_equal(messy.indices, kept[1])

    def test_float32_and_float64_weights_give_identical_results(self, bridged, bridged_fit):
        as32 = bridged.astype(np.float32)
        est32 = fit(as32, cluster_range=(2, 4))
        # The same numbers in float64 are the same graph, bit for bit.
        assert graph_from_input(as32).token == graph_from_input(as32.astype(np.float64)).token
        assert graph_from_input(as32).weights.dtype == np.float64
        # Rounding the weights to float32 does not change anything on this graph.
        assert_same_results(est32.results_, bridged_fit.results_)

    def test_int64_indices_identical_to_int32(self, bridged, bridged_fit):
        wide = bridged.copy()
        wide.indices = wide.indices.astype(np.int64)
        wide.indptr = wide.indptr.astype(np.int64)
        assert wide.indices.dtype == np.int64 and bridged.indices.dtype == np.int32
        assert graph_from_input(wide).token == graph_from_input(bridged).token
        assert_same_results(fit(wide, cluster_range=(2, 4)).results_, bridged_fit.results_)
        coo = bridged.tocoo()
        coo64 = sp.coo_matrix((coo.data, (coo.row.astype(np.int64), coo.col.astype(np.int64))), shape=coo.shape)
        assert graph_from_input(coo64).token == graph_from_input(bridged).token

    def test_dense_numpy_array_is_accepted(self, bridged, bridged_fit):
        dense = bridged.toarray()
        assert_same_results(fit(dense, cluster_range=(2, 4)).results_, bridged_fit.results_)

    def test_sparse_array_is_accepted(self, bridged, bridged_fit):
        assert_same_results(fit(sp.csr_array(bridged), cluster_range=(2, 4)).results_, bridged_fit.results_)

    def test_anndata_with_non_default_graph_key(self, bridged, bridged_fit):
        anndata = pytest.importorskip("anndata")
        n = bridged.shape[0]
        adata = anndata.AnnData(X=np.zeros((n, 2), dtype=np.float32), obsp={"my_knn": bridged.copy()})
        adata.obs_names = [f"cell{i}" for i in range(n)]
        est = fit(adata, cluster_range=(2, 4), graph_key="my_knn")
        assert_same_results(est.results_, bridged_fit.results_)
        np.testing.assert_array_equal(est.results_.cell_names, np.asarray(adata.obs_names))
        # The AnnData is not written to.
        assert list(adata.obsp.keys()) == ["my_knn"] and len(adata.uns) == 0
        assert (adata.obsp["my_knn"] != bridged).nnz == 0
        # The default key is not there: the message names the keys that are.
        with pytest.raises(KeyError, match=r"'connectivities' not found.*available keys: 'my_knn'"):
            fit(adata, cluster_range=(2, 4))


# ---------------------------------------------------------------------------
# Targets that cannot be reached, and targets up to n_cells
# ---------------------------------------------------------------------------
class TestTargets:
    def test_more_components_than_targets_gives_empty_results(self):
        A = blob_graph(8, 6, k=3, seed=2)  # 8 components: fewer than 8 clusters is impossible
        with pytest.warns(UserWarning, match="No cluster count could be evaluated"):
            est = fit(A, cluster_range=(2, 4))
        res = est.results_
        assert len(res) == 0 and res.n_cluster.size == 0
        assert sorted(res.uncovered_targets) == [2, 3, 4]
        assert all("components" in reason for reason in res.uncovered_targets.values())
        assert not res.coverage_complete and not res.search_coverage_complete
        assert est.best_cluster_ is None and est.best_resolution_ is None
        np.testing.assert_array_equal(est.labels_, np.full(48, -1))
        assert res.to_frame().empty
        assert res.consistent(threshold=2.0).size == 0
        assert len(res.target_diagnostics) == 3
        assert (res.target_diagnostics["status"] == "uncovered").all()

    def test_targets_above_the_largest_effective_count(self):
        # Four unit triangles: with min_cluster_size=2, no labeling has more than 4 counted clusters.
        A = triangles(4, bridge=0.1)
        with pytest.warns(UserWarning, match="No cluster count could be evaluated"):
            est = fit(A, cluster_range=(5, 12))
        res = est.results_
        assert len(res) == 0
        assert sorted(res.uncovered_targets) == list(range(5, 13))
        assert all(
            re.search(r"no probed resolution gave \d+ (or more )?clusters", r) for r in res.uncovered_targets.values()
        )
        np.testing.assert_array_equal(est.labels_, np.full(12, -1))

    def test_cluster_range_up_to_n_cells(self):
        A = weighted_ring(12)
        est, messages = fit_quiet(A, cluster_range=(2, 12), min_cluster_size=1)
        res = est.results_
        assert_valid_results(est, 12, min_cluster_size=1)
        assert not any("No cluster count" in m for m in messages)
        # Every count 2..11 is reached on this ring, each with a perfectly consistent partition.
        assert set(range(2, 12)) <= set(res.n_cluster.tolist())
        for c in res:
            assert c.n_cluster == c.source_target_cluster
            # On a ring every cluster of a Leiden partition is a contiguous arc.
            labels = np.asarray(c.best_labels)
            assert int(np.count_nonzero(labels != np.roll(labels, 1))) == c.n_cluster

    def test_cluster_range_up_to_n_cells_with_default_min_cluster_size(self):
        A = weighted_ring(12)
        est = fit(A, cluster_range=(2, 12))  # min_cluster_size=2: at most 6 counted clusters
        assert_valid_results(est, 12)
        assert {7, 8, 9, 10, 11, 12} <= set(est.results_.uncovered_targets)

    def test_target_n_cells_is_covered(self):
        est = fit(weighted_ring(12), cluster_range=(11, 12), min_cluster_size=1)
        assert 12 in est.results_.n_cluster.tolist()


# ---------------------------------------------------------------------------
# Bad input (design brief, section 4)
# ---------------------------------------------------------------------------
def _small_graph() -> sp.csr_matrix:
    return triangles(3, bridge=0.5)  # 9 cells


def _with_entry(value: float, symmetric: bool = True) -> sp.csr_matrix:
    A = _small_graph().tolil()
    A[0, 1] = value
    if symmetric:
        A[1, 0] = value
    return A.tocsr()


class TestBadInput:
    # -- the graph --------------------------------------------------------
    def test_missing_graph_key_lists_available_keys(self):
        anndata = pytest.importorskip("anndata")
        A = _small_graph()
        adata = anndata.AnnData(X=np.zeros((9, 1), dtype=np.float32), obsp={"distances": A.copy(), "knn": A.copy()})
        with pytest.raises(
            KeyError,
            match=r"'connectivities' not found in adata\.obsp "
            r"\(available keys: 'distances', 'knn'\).*neighbors",
        ):
            scice.SCICE(cluster_range=(2, 3)).fit(adata)
        with pytest.raises(KeyError, match=r"'nope' not found.*available keys"):
            scice.SCICE(cluster_range=(2, 3), graph_key="nope").fit(adata)
        empty = anndata.AnnData(X=np.zeros((9, 1), dtype=np.float32))
        with pytest.raises(KeyError, match=r"available keys: none"):
            scice.SCICE(cluster_range=(2, 3)).fit(empty)

    @pytest.mark.parametrize(
        "matrix",
        [sp.csr_matrix(np.ones((4, 5))), np.ones((5, 4))],
        ids=["sparse", "dense"],
    )
    def test_non_square(self, matrix):
        with pytest.raises(ValueError, match=r"must be a square cell x cell adjacency matrix, got shape \("):
            scice.SCICE(cluster_range=(2, 3)).fit(matrix)

    def test_non_square_one_dimensional(self):
        with pytest.raises(ValueError, match="2-D square matrix"):
            scice.SCICE(cluster_range=(2, 3)).fit(np.ones(9))

    def test_non_symmetric(self):
        with pytest.raises(ValueError, match=r"not symmetric.*A\.maximum\(A\.T\)"):
            scice.SCICE(cluster_range=(2, 3)).fit(_with_entry(0.7, symmetric=False))
        A = _small_graph().tolil()
        A[0, 1] = 0.9  # both entries present but different
        with pytest.raises(ValueError, match="not symmetric"):
            scice.SCICE(cluster_range=(2, 3)).fit(A.tocsr())

    @pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
    def test_non_finite_weights(self, value):
        with pytest.raises(ValueError, match=r"2 NaN or infinite weight\(s\)"):
            scice.SCICE(cluster_range=(2, 3)).fit(_with_entry(value))

    def test_negative_weights(self):
        with pytest.raises(ValueError, match=r"2 negative weight\(s\).*non-negative"):
            scice.SCICE(cluster_range=(2, 3)).fit(_with_entry(-0.5))

    @pytest.mark.parametrize(
        "matrix",
        [sp.csr_matrix((10, 10)), np.zeros((10, 10)), sp.csr_matrix(([0.0, 0.0], ([0, 1], [1, 0])), shape=(5, 5))],
        ids=["sparse-empty", "dense-zeros", "explicit-zeros"],
    )
    def test_empty_graph(self, matrix):
        with pytest.raises(ValueError, match="no edges between distinct cells"):
            scice.SCICE(cluster_range=(2, 3)).fit(matrix)

    @pytest.mark.parametrize("n", [0, 1, 2])
    def test_fewer_than_three_cells(self, n):
        matrix = sp.csr_matrix(np.ones((n, n)) - np.eye(n))
        with pytest.raises(ValueError, match=rf"has {n} cells; clustering consistency needs at least 3 cells"):
            scice.SCICE(cluster_range=(2, 2)).fit(matrix)

    @pytest.mark.parametrize(
        "data, error",
        [([[0, 1], [1, 0]], TypeError), ("graph.h5ad", TypeError), (None, TypeError)],
        ids=["list", "str", "none"],
    )
    def test_not_a_graph(self, data, error):
        with pytest.raises(error, match="Expected an AnnData object or a square scipy.sparse adjacency matrix"):
            scice.SCICE(cluster_range=(2, 3)).fit(data)

    @pytest.mark.parametrize("dtype", [bool, np.complex128])
    def test_non_real_weights(self, dtype):
        with pytest.raises(TypeError, match="Graph weights must be real numbers"):
            scice.SCICE(cluster_range=(2, 3)).fit(_small_graph().astype(dtype))

    # -- cluster_range / resolution ----------------------------------------
    @pytest.mark.parametrize(
        "cluster_range",
        [(1, 3), (0, 5), (2, 10), [2, 10], [1], range(1, 4), np.array([3, 12])],
        ids=["lo=1", "lo=0", "hi>n", "list-hi>n", "list-1", "range-1", "array-hi>n"],
    )
    def test_cluster_range_outside_bounds(self, cluster_range):
        with pytest.raises(ValueError, match=r"must lie in \[2, n_cells\] = \[2, 9\]"):
            scice.SCICE(cluster_range=cluster_range).fit(_small_graph())

    def test_cluster_range_reversed(self):
        with pytest.raises(ValueError, match=r"cluster_range=\(6, 2\) is reversed.*Did you mean \(2, 6\)"):
            scice.SCICE(cluster_range=(6, 2)).fit(_small_graph())

    @pytest.mark.parametrize(
        "cluster_range, error, match",
        [
            ((2, 3, 4), ValueError, "inclusive pair"),
            ([], ValueError, "cluster_range is empty"),
            ((2.5, 4), TypeError, r"cluster_range\[0\] must be an integer"),
            ("2-5", TypeError, "cluster_range must be a tuple"),
            ({2, 3}, TypeError, "cluster_range must be a tuple"),
        ],
        ids=["triple", "empty", "float", "str", "set"],
    )
    def test_cluster_range_malformed(self, cluster_range, error, match):
        with pytest.raises(error, match=match):
            scice.SCICE(cluster_range=cluster_range).fit(_small_graph())

    def test_both_cluster_range_and_resolution(self):
        with pytest.raises(ValueError, match="Both cluster_range and resolution were given"):
            scice.SCICE(cluster_range=(2, 3), resolution=0.01).fit(_small_graph())

    def test_neither_cluster_range_nor_resolution(self):
        with pytest.raises(ValueError, match="Neither cluster_range nor resolution was given"):
            scice.SCICE().fit(_small_graph())

    @pytest.mark.parametrize(
        "resolution",
        [0, 0.0, -0.01, [0.01, 0.0], [0.01, -1], np.array([0.1, np.nan]), float("inf")],
        ids=["int0", "0.0", "negative", "list-0", "list-neg", "nan", "inf"],
    )
    def test_non_positive_resolution(self, resolution):
        with pytest.raises(ValueError, match="resolution values must be positive and finite"):
            scice.SCICE(resolution=resolution).fit(_small_graph())

    @pytest.mark.parametrize(
        "resolution, error, match",
        [
            ([], ValueError, "resolution is empty"),
            ("0.1", TypeError, "resolution must be a number"),
            ([0.1, "a"], TypeError, "resolution values must be real numbers"),
            (True, TypeError, "resolution"),
        ],
        ids=["empty", "str", "list-str", "bool"],
    )
    def test_resolution_malformed(self, resolution, error, match):
        with pytest.raises(error, match=match):
            scice.SCICE(resolution=resolution).fit(_small_graph())

    # -- other parameters ---------------------------------------------------
    @pytest.mark.parametrize("n_trials", [0, -3])
    def test_n_trials_below_one(self, n_trials):
        with pytest.raises(ValueError, match=rf"n_trials must be at least 2, got {n_trials}"):
            scice.SCICE(cluster_range=(2, 3), n_trials=n_trials).fit(_small_graph())

    @pytest.mark.parametrize("n_trials", [2.5, "5", True, None])
    def test_n_trials_not_an_integer(self, n_trials):
        with pytest.raises(TypeError, match="n_trials must be an integer"):
            scice.SCICE(cluster_range=(2, 3), n_trials=n_trials).fit(_small_graph())

    @pytest.mark.parametrize("objective", ["leiden", "CPMx", "", None, 1])
    def test_unknown_objective(self, objective):
        with pytest.raises(ValueError, match=r"objective_function must be 'CPM' or 'modularity', got"):
            scice.SCICE(cluster_range=(2, 3), objective_function=objective).fit(_small_graph())

    def test_objective_is_case_insensitive(self):
        est = scice.SCICE(resolution=[0.1], objective_function="cpm", **FIT_DEFAULTS).fit(_small_graph())
        assert est.results_.params["objective_function"] == "CPM"

    def test_failed_fit_leaves_no_fitted_state(self):
        est = scice.SCICE(cluster_range=(2, 3))
        with pytest.raises(ValueError):
            est.fit(_with_entry(-1.0))
        assert not hasattr(est, "results_") and not hasattr(est, "labels_")
