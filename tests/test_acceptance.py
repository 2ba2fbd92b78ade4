"""The core acceptance run: pbmc68k_reduced, cluster_range=(2, 10), defaults (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from scice import SCICE

pytestmark = pytest.mark.slow


def test_pbmc_default_run(pbmc):
    serial = SCICE(cluster_range=(2, 10), random_state=0).fit(pbmc)
    res = serial.results_
    for k in range(2, 11):
        assert k in res.n_cluster.tolist() or res.uncovered_targets.get(k), k
    assert np.any(res.ic < 1.005)
    assert res.timings["n_leiden_calls"] > 0
    parallel = SCICE(cluster_range=(2, 10), random_state=0, n_jobs=2).fit(pbmc)
    assert parallel.results_.clusters == res.clusters
    assert np.array_equal(parallel.labels_, serial.labels_)


def test_scanpy_front_end_on_pbmc(pbmc):
    """The scanpy-style workflow with the defaults: tl, pl, get, and the hand-off to sc.tl.leiden."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    import scice

    sc = pytest.importorskip("scanpy")
    adata = pbmc.copy()
    assert scice.tl.scice(adata, cluster_range=(2, 10), key_added="sc", random_state=0) is None
    assert "sc" in adata.uns
    columns = [c for c in adata.obs if c.startswith("sc_k")]
    assert columns and all(isinstance(adata.obs[c].dtype, pd.CategoricalDtype) for c in columns)
    for plot in (scice.pl.ic, scice.pl.stability, scice.pl.tree):
        assert isinstance(plot(adata, key="sc", show=False), matplotlib.axes.Axes)
    plt.close("all")
    table = scice.get.labels(adata, key="sc")
    for previous, current in zip(table.columns[:-1], table.columns[1:], strict=True):
        assert (table[previous] == table[current]).mean() > 0.5
    finest = int(table.columns.max())
    sc.tl.leiden(adata, key_added="handoff", **scice.get.leiden_params(adata, finest, key="sc"))
    assert adjusted_rand_score(table[finest], adata.obs["handoff"]) >= 0.99
