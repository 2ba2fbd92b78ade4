"""The cost estimate against real fits, the memory guard and the cores warning."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import scice
import scice._cost as cost_module
import scice._memory as memory_module
from scice import SCICE, CostEstimate
from scice._cost import _duration
from scice._memory import local_cores
from scice._plan import make_plan

pytestmark = pytest.mark.filterwarnings(r"ignore:n_trials=\d+ gives a coarse IC")

MB = 10**6
# the parameters of the session fixture pbmc_fit (all counts consistent: no refinement)
SMALL = dict(cluster_range=(2, 6), n_trials=8, n_bootstrap=30, random_state=0)


def _fit_seconds(est: SCICE, X) -> float:
    t0 = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t0


def test_estimate_is_within_2x_of_the_fit_and_cheap(pbmc):
    est = SCICE(**SMALL)
    cost = est.estimate_cost(pbmc)
    wall = _fit_seconds(est, pbmc)
    calls = est.results_.timings["n_leiden_calls"]
    assert 0.5 <= wall / cost.seconds <= 2.0, (wall, cost.seconds)
    assert 0.5 <= calls / cost.leiden_calls <= 2.0, (calls, cost.leiden_calls)
    assert cost.seconds <= cost.seconds_max
    assert cost.timing_seconds < 0.15 * wall
    untouched = SCICE(**SMALL)
    untouched.estimate_cost(pbmc)
    assert not hasattr(untouched, "results_")  # estimating fits nothing


def test_estimate_manual_mode_counts_every_trial(pbmc):
    est = SCICE(resolution=[0.005, 0.02, 0.05, 0.02], n_trials=4, n_bootstrap=10, random_state=0)
    cost = est.estimate_cost(pbmc)
    # three distinct resolutions, four trials each, no search, no refinement
    assert (cost.leiden_calls, cost.search_calls, cost.refine_calls) == (12, 0, 0)
    assert cost.seconds == cost.seconds_max
    text = str(cost)
    assert "per call: grid " in text and "search" not in text.split("per call:")[1]  # only the kind it runs
    assert "at most" not in text and cost.worst_case == ""  # no worst case beyond the expected time
    est.fit(pbmc)
    assert est.results_.timings["n_leiden_calls"] == cost.leiden_calls


def test_estimate_is_a_frozen_printable_record(pbmc):
    cost = SCICE(cluster_range=(3, 5), n_trials=4, n_jobs=2, random_state=0).estimate_cost(pbmc)
    assert isinstance(cost, CostEstimate) and scice.CostEstimate is CostEstimate
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.seconds = 0.0
    assert (cost.layout.layout, cost.layout.n_workers, cost.layout.pool_workers) == ("processes", 2, 2)
    assert cost.memory_bytes == cost.parent_bytes + 2 * cost.per_worker_bytes
    assert cost.per_worker_bytes > memory_module.WORKER_BASELINE_BYTES
    assert cost.leiden_calls == cost.search_calls + cost.grid_calls + cost.refine_calls
    text = str(cost)
    assert text == cost.describe()
    for needle in ("Leiden calls: about", "wall time: about", "memory: about", "2 x ", "per worker", "700 cells"):
        assert needle in text


@pytest.mark.parametrize(("optimizer", "refine_calls"), [("refine", 6), ("converge", 2), ("grid", 0)])
def test_sounding_times_several_refinement_rounds(pbmc, monkeypatch, optimizer, refine_calls):
    # the published schedule: 3 rounds of the 2 sounding trials, each round continuing the last;
    # "converge": one call to convergence per trial; "grid" does not refine
    rounds: list = []  # (start, result) of each refinement round the sounding times
    call = cost_module._Timer.call

    def spy(self, kind, gamma, seeds, n_iterations, beta, start=None):
        result = call(self, kind, gamma, seeds, n_iterations, beta, start)
        if kind == "refine":
            rounds.append((start, result))
        return result

    monkeypatch.setattr(cost_module._Timer, "call", spy)
    cost = SCICE(cluster_range=(3, 5), n_trials=4, optimizer=optimizer, random_state=0).estimate_cost(pbmc)
    assert len(rounds) == refine_calls // 2
    assert all(b[0] is a[1] for a, b in zip(rounds, rounds[1:], strict=False))  # each round continues the last
    assert cost.timing_calls["refine"] == refine_calls
    assert cost.timing_calls["search"] > 0 and cost.timing_calls["grid"] == 2 * 3  # 2 trials per target
    assert f"from {sum(cost.timing_calls.values())} real Leiden calls" in str(cost)
    worst = {
        "refine": "every grid resolution of every target refines to max_iterations",
        "converge": "every grid resolution of every target runs to convergence",
        "grid": "every target runs its whole grid",
    }[optimizer]
    assert cost.worst_case == worst and f"(at most {_duration(cost.seconds_max)} if {worst})" in str(cost)


def test_estimate_checks_like_fit(pbmc):
    with pytest.raises(ValueError, match=r"n_jobs must be a positive integer or -1"):
        SCICE(cluster_range=(2, 5), n_jobs=0).estimate_cost(pbmc)
    with pytest.raises(ValueError, match=r"Unknown optimizer 'nope'"):
        SCICE(cluster_range=(2, 5), optimizer="nope").estimate_cost(pbmc)
    bad = sp.random(5, 6, density=0.5, format="csr", random_state=0)
    messages = []
    for call in (SCICE(cluster_range=(2, 3)).fit, SCICE(cluster_range=(2, 3)).estimate_cost):
        with pytest.raises(ValueError) as info:
            call(bad)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "square" in messages[0]


def test_memory_of_1000_workers_counts_each_worker(pbmc):
    with pytest.warns(UserWarning, match=r"n_jobs=1000 is more than the \d+ CPU core"):
        cost = SCICE(cluster_range=(2, 3), n_trials=2, n_jobs=1000, random_state=0).estimate_cost(pbmc)
    assert cost.layout.pool_workers == 1000
    assert cost.memory_bytes >= 1000 * 30 * MB
    assert cost.per_worker_bytes >= 30 * MB


def test_memory_guard_refuses_1000_workers(pbmc, monkeypatch):
    # a 24 GB machine: 1000 workers of ~48 MiB each do not fit. The guard is called
    # directly (as fit calls it, before any worker starts), so a failing guard
    # cannot start 1000 processes.
    monkeypatch.setattr(memory_module, "available_memory", lambda: 24 * 10**9)
    est = SCICE(cluster_range=(2, 3), n_trials=2, n_jobs=1000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the cores warning, tested below
        graph, plan = make_plan(est, pbmc)
    with pytest.raises(MemoryError, match=r"1000 worker process\(es\) x .* plus its copy of the graph.*Lower n_jobs"):
        memory_module.check_run_memory(graph, plan)


def test_fit_runs_the_memory_guard_before_any_worker(pbmc, monkeypatch):
    monkeypatch.setattr(memory_module, "available_memory", lambda: 10_000)
    with pytest.raises(MemoryError, match=r"needs about .* 2 worker process\(es\)"):
        SCICE(cluster_range=(2, 3), n_trials=2, n_jobs=2, random_state=0).fit(pbmc)


def test_n_jobs_above_cores_warns_once_naming_them(pbmc):
    n_jobs = local_cores() + 1
    est = SCICE(resolution=[0.02], n_trials=2, n_bootstrap=5, n_jobs=n_jobs, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(pbmc)
    cores = [w for w in caught if "CPU core" in str(w.message)]
    assert len(cores) == 1
    assert issubclass(cores[0].category, UserWarning)
    message = str(cores[0].message)
    assert f"n_jobs={n_jobs} is more than the {local_cores()} CPU core(s)" in message
    assert f"Use n_jobs={local_cores()} or n_jobs=-1" in message


def test_no_cores_warning_within_the_cores(pbmc):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        SCICE(cluster_range=(2, 3), n_jobs=-1).estimate_cost(pbmc)


def test_verbose_fit_logs_the_estimate(pbmc, caplog):
    est = SCICE(resolution=[0.02], n_trials=2, n_bootstrap=5, random_state=0, verbose=True)
    with caplog.at_level(logging.INFO, logger="scice"):
        est.fit(pbmc)
    assert any("scice cost estimate: 700 cells" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_estimate_within_2x_pbmc_defaults(pbmc):
    est = SCICE(cluster_range=(2, 10), random_state=0)
    cost = est.estimate_cost(pbmc)
    wall = _fit_seconds(est, pbmc)
    assert 0.5 <= wall / cost.seconds <= 2.0, (wall, cost.seconds)
    assert cost.timing_seconds < 0.15 * wall


@pytest.mark.slow
def test_estimate_within_2x_20k_cells():
    """A 20,000-cell Gaussian-mixture graph, reduced parameters so that the fit takes minutes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from _graphs import gaussian_mixture_graph

    adata = gaussian_mixture_graph(20_000)
    est = SCICE(cluster_range=(10, 14), n_trials=8, n_bootstrap=20, max_iterations=20, random_state=0)
    est.set_params(optimizer__n_steps=5, searcher__n_probe_trials=4)
    cost = est.estimate_cost(adata)
    wall = _fit_seconds(est, adata)
    assert 0.5 <= wall / cost.seconds <= 2.0, (wall, cost.seconds)
    assert cost.timing_seconds < 0.15 * wall
    assert np.isfinite(cost.seconds_max) and cost.seconds_max >= cost.seconds
