"""scice.get: the results table, the aligned labels, and sc.tl.leiden arguments that reproduce a count."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import scice
from scice.legacy import write_uns

sc = pytest.importorskip("scanpy")


@pytest.fixture(scope="module")
def pbmc_tl(pbmc):
    """pbmc68k_reduced after scice.tl.scice(cluster_range=(2, 7)) under key "sc"."""
    adata = pbmc.copy()
    scice.tl.scice(adata, cluster_range=(2, 7), key_added="sc", random_state=0, n_trials=8, n_bootstrap=30)
    return adata


def _sc_leiden(adata, kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sc.tl.leiden(adata, key_added="handoff", **kwargs)
    return adata.obs["handoff"].to_numpy()


def test_results_df(pbmc_tl, pbmc_manual_fit):
    df = scice.get.results_df(pbmc_tl, key="sc")
    results = scice.legacy.from_legacy_dict(pbmc_tl.uns["sc"])
    assert df.index.name == "n_cluster" and df.index.tolist() == results.n_cluster.tolist()
    assert {"gamma", "ic", "ic_q05", "ic_q95", "n_partitions", "consistent"} <= set(df.columns)
    for k, row in df.iterrows():
        ic_vec = results[k].ic_vec
        assert row.ic == results[k].ic and row.ic_q05 == pytest.approx(np.quantile(ic_vec, 0.05))
        assert row.n_partitions == results[k].labelings.shape[0]
        assert row.consistent == (row.ic < 1.005)
    manual = pbmc_manual_fit.results_
    cut = float(np.sort(manual.ic)[1])  # a stricter threshold than the stored one
    df = scice.get.results_df(manual, threshold=cut)
    assert df.consistent.tolist() == (manual.ic < cut).tolist()


def test_labels(pbmc_tl, pbmc_manual_fit):
    table = scice.get.labels(pbmc_tl, key="sc")
    results = scice.legacy.from_legacy_dict(pbmc_tl.uns["sc"])
    assert table.columns.tolist() == results.consistent().tolist()
    assert all(isinstance(k, int) for k in table.columns)
    assert (table.dtypes == np.int64).all() and table.index.equals(pbmc_tl.obs_names)
    for k in table.columns:
        assert adjusted_rand_score(table[k], results[k].best_labels) == 1.0
    # from the results alone: the cell names are the index
    direct = scice.get.labels(results)
    pd.testing.assert_frame_equal(direct, table, check_index_type=False, check_names=False)
    assert scice.get.labels(pbmc_manual_fit.results_, threshold=1.0).shape[1] == 0


def test_leiden_params_reproduce_every_consistent_count(pbmc_tl):
    adata = pbmc_tl.copy()
    table = scice.get.labels(adata, key="sc")
    assert len(table.columns) >= 4
    for k in table.columns:
        kwargs = scice.get.leiden_params(adata, k, key="sc")
        ari = adjusted_rand_score(table[k], _sc_leiden(adata, kwargs))
        assert ari >= 0.99, f"k={k}: ARI {ari:.4f} with {kwargs}"


def test_leiden_params_errors_and_warning(pbmc_copy, pbmc_manual_fit):
    results = pbmc_manual_fit.results_
    write_uns(pbmc_copy, results, key_added="m")
    with pytest.raises(KeyError, match="No result with 99 clusters"):
        scice.get.leiden_params(pbmc_copy, 99, key="m")
    with pytest.raises(TypeError, match="k must be an integer"):
        scice.get.leiden_params(pbmc_copy, "5", key="m")
    worst = int(results.n_cluster[np.argmax(results.ic)])
    assert results[worst].ic >= 1.005
    with pytest.warns(UserWarning, match=f"k={worst} is not consistent"):
        kwargs = scice.get.leiden_params(pbmc_copy, worst, key="m", scanpy_version="1.12.4")
    assert kwargs["resolution"] == 2 * results[worst].gamma and kwargs["obsp"] == "connectivities"


def test_threshold_errors_match_the_plots(pbmc_manual_fit):
    results = pbmc_manual_fit.results_
    for call in (scice.get.results_df, scice.get.labels, scice.pl.ic):
        with pytest.raises(ValueError, match="threshold is NaN; pass a number such as 1.005"):
            call(results, threshold=float("nan"))
        with pytest.raises(TypeError, match="threshold must be a number"):
            call(results, threshold="strict")
