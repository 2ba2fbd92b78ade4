"""get_robust_labels and the legacy one-call scice_clustering, on real fits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import scice
from scice import SCICE
from scice._api import _CappedProcessLayout
from scice.legacy import from_legacy_dict, to_legacy_dict, write_uns

anndata = pytest.importorskip("anndata")


@pytest.fixture()
def adata_with_results(pbmc_copy, pbmc_manual_fit):
    write_uns(pbmc_copy, pbmc_manual_fit.results_)
    return pbmc_copy


def _split_threshold(results) -> float:
    """A threshold with some counts below and some above it."""
    ic = np.sort(results.ic)
    return float((ic[0] + ic[1]) / 2)


def _check_labels(df, results, threshold, index):
    expected = [f"scICE_k_{k}" for k in results.n_cluster[results.ic < threshold]]
    assert list(df.columns) == expected and expected
    assert list(df.index) == list(index)
    for col in expected:
        k = int(col.rsplit("_", 1)[1])
        assert isinstance(df[col].dtype, pd.CategoricalDtype)
        assert list(df[col].cat.categories) == [str(i) for i in range(k)]
        np.testing.assert_array_equal(df[col].astype(int).to_numpy(), results[k].best_labels)


# ---------------------------------------------------------------------------
# get_robust_labels
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["results", "dict", "adata"])
def test_robust_labels_dataframe(source, pbmc_manual_fit, adata_with_results):
    r = pbmc_manual_fit.results_
    data = {"results": r, "dict": to_legacy_dict(r), "adata": adata_with_results}[source]
    threshold = _split_threshold(r)
    df = scice.get_robust_labels(data, threshold=threshold)
    _check_labels(df, r, threshold, r.cell_names)
    assert f"scICE_k_{r.n_cluster[np.argmax(r.ic)]}" not in df  # the inconsistent ones are left out


@pytest.mark.parametrize(
    ("threshold", "error", "match"),
    [
        (None, TypeError, r"threshold must be a number \(e.g. 1.005\), got None"),
        ("high", TypeError, r"threshold must be a number \(e.g. 1.005\), got 'high'"),
        (float("nan"), ValueError, r"threshold is NaN; pass a number such as 1.005\.$"),
    ],
)
def test_robust_labels_rejects_a_non_number_threshold(pbmc_manual_fit, threshold, error, match):
    with pytest.raises(error, match=match):
        scice.get_robust_labels(pbmc_manual_fit.results_, threshold=threshold)


def test_robust_labels_threshold_is_strict(pbmc_manual_fit):
    r = pbmc_manual_fit.results_
    lowest = float(r.ic.min())
    with pytest.warns(UserWarning, match="No cluster count has IC below threshold"):
        df = scice.get_robust_labels(r, threshold=lowest)
    assert df.shape == (len(r.cell_names), 0) and list(df.index) == list(r.cell_names)
    assert scice.get_robust_labels(r, threshold=np.nextafter(lowest, 2)).shape[1] == 1


def test_robust_labels_into_obs(adata_with_results, pbmc_manual_fit):
    r = pbmc_manual_fit.results_
    threshold = _split_threshold(r)
    out = scice.get_robust_labels(adata_with_results, threshold=threshold, return_adata=True)
    assert out is adata_with_results
    df = scice.get_robust_labels(r, threshold=threshold)
    cols = list(df.columns)
    pd.testing.assert_frame_equal(out.obs[cols], df, check_names=False)  # obs_names may carry a name


def test_robust_labels_into_obs_replaces_stale_columns(adata_with_results, pbmc_manual_fit):
    r = pbmc_manual_fit.results_
    obs = adata_with_results.obs
    obs["scICE_k_99"] = "x"  # left by an earlier run
    obs["scICE_k_note"] = "kept"  # not a count column: not ours to remove
    scice.get_robust_labels(adata_with_results, threshold=float(r.ic.max()) + 1, return_adata=True)
    assert {f"scICE_k_{k}" for k in r.n_cluster} <= set(obs.columns)
    strict = scice.get_robust_labels(adata_with_results, threshold=_split_threshold(r), return_adata=True)
    counts = [c for c in strict.obs.columns if c.startswith("scICE_k_") and c != "scICE_k_note"]
    assert counts == [f"scICE_k_{k}" for k in r.n_cluster[r.ic < _split_threshold(r)]]
    assert "scICE_k_note" in strict.obs


def test_robust_labels_after_h5ad_reload(adata_with_results, pbmc_manual_fit, tmp_path):
    r = pbmc_manual_fit.results_
    path = tmp_path / "pbmc_scice.h5ad"
    adata_with_results.write_h5ad(path)
    reread = anndata.read_h5ad(path)
    threshold = _split_threshold(r)
    df = scice.get_robust_labels(reread, threshold=threshold)
    _check_labels(df, r, threshold, reread.obs_names)
    pd.testing.assert_frame_equal(df, scice.get_robust_labels(r, threshold=threshold), check_names=False)
    scice.get_robust_labels(reread, threshold=threshold, return_adata=True)
    reread.write_h5ad(path)  # categorical label columns are storable
    again = anndata.read_h5ad(path)
    pd.testing.assert_frame_equal(again.obs[list(df.columns)], df)


def test_robust_labels_errors(pbmc_manual_fit, adata_with_results):
    r = pbmc_manual_fit.results_
    threshold = _split_threshold(r)
    nameless = dataclasses.replace(r, cell_names=None)  # what a fit on a sparse matrix gives
    with pytest.raises(ValueError, match="Cell names are needed"):
        scice.get_robust_labels(nameless, threshold=threshold)
    with pytest.raises(ValueError, match="Cell names are needed"):
        scice.get_robust_labels(to_legacy_dict(nameless), threshold=threshold)
    with pytest.raises(ValueError, match="needs an AnnData"):
        scice.get_robust_labels(r, threshold=threshold, return_adata=True)
    bare = adata_with_results.copy()
    del bare.uns["scICE"]
    with pytest.raises(KeyError, match="scice_clustering"):
        scice.get_robust_labels(bare)
    with pytest.raises(KeyError, match=r"adata.uns\['elsewhere'\]"):
        scice.get_robust_labels(adata_with_results, key="elsewhere")
    shuffled = adata_with_results[::-1].copy()
    with pytest.raises(ValueError, match="differ from adata.obs_names"):
        scice.get_robust_labels(shuffled, threshold=threshold)
    with pytest.raises(ValueError, match="differ from adata.obs_names"):
        scice.get_robust_labels(shuffled, threshold=threshold, return_adata=True)
    assert not [c for c in shuffled.obs if c.startswith("scICE_k_")]


def test_robust_labels_for_nameless_results_in_an_anndata(pbmc_manual_fit, pbmc_copy):
    """Results of a sparse-matrix fit stored in the AnnData of the same cells use its obs_names."""
    r = dataclasses.replace(pbmc_manual_fit.results_, cell_names=None)
    write_uns(pbmc_copy, r)
    threshold = _split_threshold(r)
    df = scice.get_robust_labels(pbmc_copy, threshold=threshold)
    _check_labels(df, r, threshold, pbmc_copy.obs_names)
    with pytest.raises(ValueError, match="results describe 700 cells"):
        scice.get_robust_labels(pbmc_copy[:50].copy(), threshold=threshold)


# ---------------------------------------------------------------------------
# scice_clustering
# ---------------------------------------------------------------------------
FAST = dict(n_trials=4, n_bootstrap=10)


def test_scice_clustering_in_place_matches_the_estimator(pbmc_copy):
    out = scice.scice_clustering(pbmc_copy, resolution=[0.005, 0.005, 0.02], seed=3, **FAST)
    assert out is None
    stored = from_legacy_dict(pbmc_copy.uns["scICE"])
    est = scice.SCICE(resolution=[0.005, 0.02], n_trials=4, n_bootstrap=10, random_state=3).fit(pbmc_copy)
    assert stored.clusters == est.results_.clusters
    assert stored.params == est.results_.params
    d = pbmc_copy.uns["scICE"]
    assert d["analysis_mode"] == "resolution"
    np.testing.assert_array_equal(d["resolution_input"], [0.005, 0.02])  # repeats dropped
    assert d["beta_applied"] and d["graph_key"] == "connectivities"


def test_scice_clustering_cluster_range_and_key_added(pbmc_copy):
    scice.scice_clustering(
        pbmc_copy, cluster_range=[2, 3], seed=0, key_added="run1", min_cluster_size=3, ic_threshold=1.01, **FAST
    )
    d = pbmc_copy.uns["run1"]
    assert "scICE" not in pbmc_copy.uns
    assert d["analysis_mode"] == "cluster_range"
    np.testing.assert_array_equal(d["requested_cluster_range"], [2, 3])
    assert d["min_cluster_size"] == 3 and d["encoding"] and d["params"]["n_trials"] == 4
    assert from_legacy_dict(d).ic_threshold == 1.01


def test_scice_clustering_copy_leaves_input_untouched(pbmc):
    uns_keys, obs_cols = set(pbmc.uns), list(pbmc.obs.columns)
    graph = pbmc.obsp["connectivities"].copy()
    out = scice.scice_clustering(pbmc, resolution=0.005, seed=1, copy=True, **FAST)
    assert out is not pbmc and isinstance(out, anndata.AnnData)
    assert "scICE" in out.uns and "scICE" not in pbmc.uns
    assert set(pbmc.uns) == uns_keys and list(pbmc.obs.columns) == obs_cols
    assert (pbmc.obsp["connectivities"] != graph).nnz == 0
    assert list(out.obs_names) == list(pbmc.obs_names)


def test_scice_clustering_scratch_dir_and_caps(pbmc_copy, tmp_path):
    scice.scice_clustering(
        pbmc_copy,
        resolution=[0.005, 0.01],
        seed=0,
        scratch_dir=tmp_path,
        n_workers=2,
        outer_workers=1,
        inner_workers=1,
        **FAST,
    )
    assert pbmc_copy.uns["scICE"]["parallel_layout"]["outer_workers"] == 1
    with pytest.raises(ValueError, match="scratch_dir .* is not an existing folder; create it first"):
        scice.scice_clustering(pbmc_copy, resolution=[0.005], scratch_dir=tmp_path / "missing", **FAST)
    with pytest.warns(UserWarning, match="n_workers=1 runs everything in this process"):
        scice.scice_clustering(pbmc_copy, resolution=[0.005], seed=0, outer_workers=4, **FAST)
    assert pbmc_copy.uns["scICE"]["parallel_layout"]["layout"] == "serial"


class _WaitingCapped(_CappedProcessLayout):
    def ready(self):
        return True  # send work to the pool at once (the fit would otherwise start in the parent)


def test_inner_workers_one_still_runs_on_the_pool(pbmc):
    """The legacy ``inner_workers=1``: every trial set is one chunk, but chunks go to the workers."""
    kw = dict(cluster_range=(3, 5), n_trials=4, n_bootstrap=10, random_state=0)
    serial = SCICE(**kw).fit(pbmc).results_
    capped = SCICE(**kw, n_jobs=2, layout=_WaitingCapped(inner_workers=1)).fit(pbmc).results_
    assert (capped.parallel_layout["outer_workers"], capped.parallel_layout["inner_workers"]) == (3, 1)
    assert capped.parallel_layout["backend"] == "loky"
    t = capped.timings
    # one chunk per trial set, all on the workers: as many chunks as trial sets run
    # ("frozen" rows are refinement candidates that sat out a round: no trials ran)
    ran = ~serial.optimization_diagnostics["stage"].isin(["chosen", "frozen"])
    n_sets = serial.resolution_search_diagnostics.shape[0] + ran.sum()
    assert t["n_chunks"] - t["n_chunks_resent"] == n_sets
    assert capped.clusters == serial.clusters


def test_capped_layout_resolves_caps():
    layout = _CappedProcessLayout(outer_workers=2, inner_workers=1, inner_min_edges=10)
    info = layout.resolve(n_jobs=4, n_tasks=9, n_vertices=100, n_edges=1000)
    assert (info.n_workers, info.outer_workers, info.inner_workers) == (4, 2, 1)
    uncapped = _CappedProcessLayout(inner_min_edges=10).resolve(n_jobs=4, n_tasks=9, n_vertices=100, n_edges=1000)
    assert (uncapped.outer_workers, uncapped.inner_workers) == (8, 4)  # 2 targets in flight per worker
    from sklearn.base import clone

    assert clone(layout).get_params()["outer_workers"] == 2


def test_scice_clustering_errors(pbmc_copy, blobs):
    with pytest.raises(ValueError, match="Neither cluster_range nor resolution"):
        scice.scice_clustering(pbmc_copy)
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_jobs'"):
        scice.scice_clustering(pbmc_copy, resolution=0.01, n_jobs=2)
    with pytest.raises(TypeError, match="SCICE\\(...\\).fit\\(matrix\\)"):
        scice.scice_clustering(blobs, resolution=0.01)
    with pytest.raises(KeyError, match="distances_x"):
        scice.scice_clustering(pbmc_copy, graph_key="distances_x", resolution=0.01)
    with pytest.raises(ValueError, match="outer_workers"):
        scice.scice_clustering(pbmc_copy, resolution=0.01, n_workers=2, outer_workers=0)
    assert "scICE" not in pbmc_copy.uns


def test_public_names():
    assert scice.scICE_clustering is scice.scice_clustering
    public = {
        "get_robust_labels",
        "scice_clustering",
        "write_uns",
        "to_legacy_dict",
        "from_legacy_dict",
        "plot_ic",
        "plot_stability",
    }
    assert public <= set(scice.__all__) and all(callable(getattr(scice, name)) for name in public)
