"""End to end, as in the legacy user guide's main example, on scanpy's pbmc68k_reduced.

Slow (~20-60 s): run with ``python -m pytest -m slow tests/test_smoke.py``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import scice  # noqa: E402

sc = pytest.importorskip("scanpy")

pytestmark = pytest.mark.slow


def _assert_png(path):
    image = plt.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200
    assert image[..., :3].std() > 0.05  # something was drawn


def test_main_example_end_to_end(tmp_path):
    adata = sc.datasets.pbmc68k_reduced()  # ships with scanpy: has obsp["connectivities"] and obsm["X_umap"]
    original_obs = list(adata.obs.columns)

    scice.scice_clustering(
        adata,
        graph_key="connectivities",
        cluster_range=list(range(2, 11)),
        n_trials=15,
        n_bootstrap=100,
        seed=42,
        verbose=False,
    )
    results = adata.uns["scICE"]
    assert results["analysis_mode"] == "cluster_range"
    n_cluster = np.asarray(results["n_cluster"])
    assert n_cluster.size >= 5 and set(n_cluster) <= set(range(2, 11))
    assert np.all(np.diff(n_cluster) > 0)
    ic = np.asarray(results["ic"])
    assert ic.shape == n_cluster.shape and np.all(ic >= 1.0)
    assert results["best_cluster"] in n_cluster
    assert results["best_resolution"] == results["gamma"][list(n_cluster).index(results["best_cluster"])]
    np.testing.assert_array_equal(results["requested_cluster_range"], np.arange(2, 11))
    assert bool(results["coverage_complete"]) == set(range(2, 11)).issubset(n_cluster)
    assert set(results["uncovered_targets"]) == set(range(2, 11)) - set(n_cluster)
    assert results["beta_applied"] and results["parallel_layout"]["n_workers"] == 1
    assert len(results["target_diagnostics"]) == 9

    fig, ax = scice.plot_ic(adata, threshold=1.005, show_gamma=True)
    fig.savefig(tmp_path / "scice_ic_plot.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    _assert_png(tmp_path / "scice_ic_plot.png")

    adata = scice.get_robust_labels(adata, threshold=1.005, return_adata=True)
    scice_columns = [c for c in adata.obs.columns if c.startswith("scICE_k_")]
    expected = [f"scICE_k_{k}" for k in n_cluster[ic < 1.005]]
    assert scice_columns == expected and scice_columns, "pbmc68k_reduced has consistent counts at 1.005"
    for column in scice_columns:
        assert adata.obs[column].nunique() == int(column.rsplit("_", 1)[1])
    sc.pl.umap(adata, color=scice_columns[: min(3, len(scice_columns))], wspace=0.4, show=False)
    plt.savefig(tmp_path / "scice_umap.png", dpi=150, bbox_inches="tight")
    plt.close("all")
    _assert_png(tmp_path / "scice_umap.png")

    fig, ax = scice.plot_stability(adata)
    fig.savefig(tmp_path / "scice_stability.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    _assert_png(tmp_path / "scice_stability.png")

    path = tmp_path / "pbmc_scice.h5ad"
    adata.write_h5ad(path)
    reread = sc.read_h5ad(path)
    assert scice.from_legacy_dict(reread.uns["scICE"]) == scice.from_legacy_dict(adata.uns["scICE"])
    fig, ax = scice.plot_ic(reread, threshold=1.005, show_gamma=True)
    fig.savefig(tmp_path / "scice_ic_plot_reloaded.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    _assert_png(tmp_path / "scice_ic_plot_reloaded.png")

    labels = scice.get_robust_labels(reread, threshold=1.005)
    assert list(labels.columns) == scice_columns
    pd.testing.assert_frame_equal(labels, reread.obs[scice_columns])
    pd.testing.assert_frame_equal(labels, adata.obs[scice_columns])
    assert [c for c in reread.obs.columns if not c.startswith("scICE_k_")] == original_obs


def test_manual_resolution_example():
    adata = sc.datasets.pbmc68k_reduced()
    scice.scice_clustering(adata, resolution=[0.05, 0.05, 0.10, 0.20], n_trials=15, n_bootstrap=100, seed=42)
    results = adata.uns["scICE"]
    assert results["analysis_mode"] == "resolution"
    np.testing.assert_array_equal(results["resolution_input"], [0.05, 0.10, 0.20])  # deduplicated
    assert len(results["resolution_diagnostics"]) == 3
    assert results["n_cluster"].size >= 1 and (results["source_target_cluster"] == -1).all()
    # high resolutions on a kNN graph give many small clusters
    assert results["n_cluster"].min() > 20
