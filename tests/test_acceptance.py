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
