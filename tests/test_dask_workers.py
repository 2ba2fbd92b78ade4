"""A local dask.distributed cluster with more worker processes than cores gives the serial results."""

from __future__ import annotations

import warnings

import joblib
import pytest

from scice import SCICE
from scice._memory import local_cores


@pytest.fixture(scope="module")
def crowded_client():
    """A dask cluster of three single-threaded worker processes (more than this machine's cores when it has 2)."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _held() -> list:
    import sys

    worker = sys.modules.get("scice._worker")
    return [] if worker is None else worker.held_graphs()


def test_more_dask_workers_than_cores_gives_serial_results(pbmc, crowded_client):
    kw = dict(cluster_range=(3, 6), n_trials=10, n_bootstrap=20, random_state=5)
    serial = SCICE(**kw).fit(pbmc).results_
    n_jobs = max(3, local_cores() + 1)
    with joblib.parallel_config(backend="dask"), warnings.catch_warnings():
        # the workers are the cluster's, not this process's cores: no cores warning
        warnings.simplefilter("error", UserWarning)
        on_dask = SCICE(**kw, n_jobs=n_jobs, optimizer="refine").fit(pbmc).results_
    assert on_dask.parallel_layout["backend"] == "dask"
    assert on_dask.parallel_layout["inner_workers"] == n_jobs
    assert on_dask.clusters == serial.clusters
    assert on_dask.optimization_diagnostics.equals(serial.optimization_diagnostics)
    assert on_dask.timings["n_leiden_calls"] == serial.timings["n_leiden_calls"]
    held = crowded_client.run(_held)
    assert len(held) == 3 and sum(bool(h) for h in held.values()) >= 2  # the work was spread
