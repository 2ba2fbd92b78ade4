"""Parallel layouts on real engines: loky processes and a local dask.distributed cluster."""

from __future__ import annotations

import joblib
import pytest

from scice import SCICE


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_cluster_gives_serial_results(pbmc, dask_client):
    kw = dict(cluster_range=(3, 6), n_trials=5, n_bootstrap=20, random_state=11)
    serial = SCICE(**kw).fit(pbmc).results_
    with joblib.parallel_config(backend="dask"):
        on_dask = SCICE(**kw, n_jobs=2).fit(pbmc).results_
    assert on_dask.parallel_layout["backend"] == "dask"
    assert on_dask.parallel_layout["outer_workers"] == 2
    assert on_dask.clusters == serial.clusters
    assert on_dask.optimization_diagnostics.equals(serial.optimization_diagnostics)
    # the dask workers really ran Leiden: their processes built our graph
    ran = dask_client.run(_worker_built_graph)
    assert len(ran) == 2 and any(ran.values())


def _worker_built_graph() -> bool:
    import sys

    leiden = sys.modules.get("scice._leiden")
    return leiden is not None and len(leiden._GRAPH_CACHE) > 0


def test_timings_record_leiden_and_scoring(pbmc_fit):
    t = pbmc_fit.results_.timings
    assert t["n_leiden_calls"] > 0 and t["leiden_seconds"] > 0
    assert 0 <= t["scoring_seconds"] < t["leiden_seconds"]
    assert t["total_seconds"] >= t["search_seconds"]
