"""Parallel layouts on real engines: loky, multiprocessing, a local dask.distributed cluster and ray."""

from __future__ import annotations

import copy
import os
import pickle

import joblib
import pytest
from sklearn.base import clone

from scice import SCICE
from scice.strategies import ProcessLayout


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
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
    assert (on_dask.parallel_layout["outer_workers"], on_dask.parallel_layout["inner_workers"]) == (4, 2)
    assert on_dask.timings["n_chunks"] > 0
    assert on_dask.clusters == serial.clusters
    assert on_dask.optimization_diagnostics.equals(serial.optimization_diagnostics)
    # the dask workers really ran Leiden: their processes hold our graph, sent once each
    ran = dask_client.run(_worker_graphs)
    assert len(ran) == 2 and any(ran.values())
    assert on_dask.timings["n_graph_sends"] >= sum(1 for held in ran.values() if held)


@pytest.fixture(scope="module")
def ray_backend():
    """A local ray instance (2 CPUs) registered as joblib's ``"ray"`` backend."""
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield "ray"
    ray.shutdown()


@pytest.mark.parametrize("backend", ["multiprocessing", "ray"])
def test_pool_per_call_backends_give_serial_results(pbmc, backend, request):
    """joblib's multiprocessing backend and ray's build a pool per ``Parallel`` call and
    cannot return results as they finish; the layout keeps one pool for the fit."""
    if backend == "ray":
        request.getfixturevalue("ray_backend")
    kw = dict(cluster_range=(3, 6), n_trials=5, n_bootstrap=20, random_state=11)
    serial = SCICE(**kw).fit(pbmc).results_
    with joblib.parallel_config(backend=backend):
        parallel = SCICE(**kw, n_jobs=2).fit(pbmc).results_
    assert parallel.parallel_layout["backend"] == backend
    assert parallel.clusters == serial.clusters
    assert parallel.optimization_diagnostics.equals(serial.optimization_diagnostics)
    t = parallel.timings
    assert t["n_chunks"] > 0
    # The workers kept the graph between calls: a new pool per call would need it
    # resent with every chunk (n_graph_sends == n_chunks / 2). Forked workers
    # (multiprocessing) may hold it from the start.
    assert t["n_graph_sends"] < t["n_chunks"] / 4


def _worker_graphs() -> list:
    import sys

    worker = sys.modules.get("scice._worker")
    return [] if worker is None else worker.held_graphs()


def test_timings_record_leiden_and_scoring(pbmc_fit):
    t = pbmc_fit.results_.timings
    assert t["n_leiden_calls"] > 0 and t["leiden_seconds"] > 0
    assert 0 <= t["scoring_seconds"] < t["leiden_seconds"]
    assert t["total_seconds"] >= t["search_seconds"]


def test_a_layouts_live_pool_stays_out_of_its_parameters():
    """The pool a session opens is not layout state: clone, get_params, pickling and deepcopy never see it."""
    layout = ProcessLayout(tasks_per_worker=3)
    params = layout.get_params()
    with layout.session(2):
        pool = layout._session
        assert pool is not None and pool.executor is not None and len(pool.warming) == 2
        assert layout.get_params() == params
        for other in (pickle.loads(pickle.dumps(layout)), copy.deepcopy(layout), clone(layout)):
            assert type(other) is ProcessLayout and other.get_params() == params
            assert "_session" not in vars(other) and other._session is None and other.ready()
        assert layout._session is pool  # copying left the fit's pool in place
        assert len(set(layout.map(os.getpid, [()] * 6, 2)) - {os.getpid()}) >= 1  # and it still runs chunks
    assert "_session" not in vars(layout) and layout.ready()
