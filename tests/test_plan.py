"""The fit plan: parameter checks without a graph, the plan of a fit, checkpoint fingerprints."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError

import joblib
import numpy as np
import pytest

import scice
from scice import SCICE
from scice._checkpoint import fingerprint_parts
from scice._fit import TaskResult
from scice._plan import FitPlan, MethodParams, check_params, make_plan
from scice.strategies import BisectionSearcher, ECSScorer, ProcessLayout, RefineOptimizer, SerialLayout
from scice.strategies._base import Task
from scice.testing import blob_graph

N_CELLS = 160  # blob_graph()


def test_check_params_normalises_without_a_graph():
    est = SCICE(cluster_range=(2, 5), objective_function="Modularity", n_jobs=-1, beta=1, check_memory=0)
    before = est.get_params(deep=True)
    params = check_params(est)
    assert isinstance(params, MethodParams) and not isinstance(params, FitPlan)
    assert params.mode == "cluster_range" and params.objective == "modularity"
    assert params.n_jobs == joblib.effective_n_jobs(-1)
    assert params.beta == 1.0 and isinstance(params.beta, float)
    assert params.check_memory is False
    assert est.get_params(deep=True) == before  # nothing changed


def test_check_params_checks_targets_only_given_n_cells():
    est = SCICE(cluster_range=(2, 10_000))
    check_params(est)
    with pytest.raises(ValueError, match=r"\[2, n_cells\] = \[2, 160\]"):
        check_params(est, n_cells=N_CELLS)
    check_params(SCICE(resolution=[0.1, 0.2]), n_cells=N_CELLS)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"cluster_range": (2, 4), "resolution": [0.1]},
        {"cluster_range": (5, 2)},
        {"cluster_range": (2, 10_000)},
        {"cluster_range": "2-5"},
        {"resolution": []},
        {"resolution": [0.1, -1.0]},
        {"resolution": [0.1], "n_trials": 2.5},
        {"resolution": [0.1], "objective_function": "RB"},
        {"resolution": [0.1], "graph_key": 3},
        {"resolution": [0.1], "n_jobs": 0},
        {"resolution": [0.1], "beta": 0},
        {"resolution": [0.1], "resolution_tolerance": 0.0},
        {"resolution": [0.1], "scorer": "ari"},
        {"resolution": [0.1], "optimizer": 42},
        {"resolution": [0.1], "random_state": "seed"},
        # two bad parameters: both report the first in fit's order
        {"resolution": [-1.0], "n_trials": 0},
        {"cluster_range": (1, 4), "scorer": "ari"},
        {"resolution": [-1.0], "random_state": "seed"},
    ],
)
def test_check_params_raises_what_fit_raises(params):
    est = SCICE(**params)
    with pytest.raises((ValueError, TypeError)) as from_fit:
        est.fit(blob_graph())
    with pytest.raises((ValueError, TypeError)) as from_check:
        check_params(est, n_cells=N_CELLS)
    assert type(from_check.value) is type(from_fit.value)
    assert str(from_check.value) == str(from_fit.value)


def test_make_plan_holds_what_the_fit_uses(blobs):
    optimizer = RefineOptimizer(n_steps=5)
    est = SCICE(cluster_range=[4, 2, 4], n_trials=3, random_state=0, optimizer=optimizer, graph_key="knn")
    graph, plan = make_plan(est, blobs)
    assert graph.n_vertices == N_CELLS
    assert plan.targets.tolist() == [2, 4] and plan.resolutions is None and plan.n_tasks == 2
    assert plan.n_trials == 3 and plan.seeds.trials.shape == (3,)
    assert plan.graph_key == "knn" and plan.random_state == 0 and plan.checkpoint is None
    assert plan.leiden.objective_function == "CPM" and plan.leiden.min_cluster_size == 2
    # the fit's own strategy instances: the estimator's are never used (or changed) by a fit
    assert plan.strategies.optimizer is not optimizer and plan.strategies.optimizer.n_steps == 5
    assert isinstance(plan.strategies.searcher, BisectionSearcher)
    assert isinstance(plan.strategies.scorer, ECSScorer)
    assert isinstance(plan.strategies.layout, SerialLayout)  # "auto" with one job
    assert plan.layout_info.layout == "serial"
    with pytest.raises(FrozenInstanceError):
        plan.n_trials = 5
    _, again = make_plan(est, blobs)
    assert np.array_equal(again.seeds.trials, plan.seeds.trials)  # same random_state, same seeds


def test_make_plan_resolves_auto_layout_by_effective_n_jobs(blobs):
    _, manual = make_plan(SCICE(resolution=[0.2, 0.1, 0.2], n_jobs=2), blobs)
    assert manual.resolutions.tolist() == [0.2, 0.1] and manual.targets is None and manual.n_tasks == 2
    assert isinstance(manual.strategies.layout, ProcessLayout) and manual.n_jobs == 2
    _, all_cores = make_plan(SCICE(resolution=[0.1], n_jobs=-1), blobs)
    expected = SerialLayout if joblib.effective_n_jobs(-1) == 1 else ProcessLayout
    assert isinstance(all_cores.strategies.layout, expected)


def test_fingerprint_params_are_the_method_parameters_that_change_results():
    params = check_params(SCICE(resolution=[0.1], n_jobs=2, check_memory=False))
    # A checkpoint written before must still be accepted: these keys and values are fixed.
    assert params.fingerprint_params() == {
        "mode": "resolution",
        "objective": "CPM",
        "n_trials": 15,
        "n_bootstrap": 100,
        "n_iterations": 10,
        "max_iterations": 150,
        "beta": 0.1,
        "ic_threshold": 1.005,
        "remove_threshold": 1.15,
        "min_cluster_size": 2,
        "resolution_tolerance": 1e-8,
    }


def test_fingerprint_parts_are_unchanged(blobs):
    est = SCICE(cluster_range=(2, 4), n_trials=4, random_state=np.int64(7), n_jobs=2, optimizer=RefineOptimizer(5))
    graph, plan = make_plan(est, blobs)

    def strategy(obj):
        name = type(obj).__module__ + "." + type(obj).__qualname__
        return [name, {k: repr(v) for k, v in sorted(obj.get_params(deep=True).items())}]

    assert fingerprint_parts(graph, plan) == {
        "version": scice.__version__,
        "graph": graph.token,
        "targets": [2, 3, 4],
        "resolutions": None,
        "params": plan.fingerprint_params(),
        "random_state": 7,
        "strategies": {
            "searcher": strategy(BisectionSearcher()),
            "optimizer": strategy(RefineOptimizer(5)),
            "scorer": strategy(ECSScorer()),
        },
    }
    assert fingerprint_parts(graph, plan)["strategies"]["optimizer"][0] == "scice.strategies._optimize.RefineOptimizer"


def test_checkpoint_tasks_saved_under_the_old_module_path_resume(monkeypatch, tmp_path, blobs):
    # Checkpoints written before the task pipeline moved to scice._fit pickled their
    # tasks as scice._pipeline.TaskResult; a run resumes them.
    kw = dict(resolution=[0.05, 0.1], n_trials=3, n_bootstrap=5, random_state=0, checkpoint=tmp_path / "ckpt")
    with monkeypatch.context() as patch:
        patch.setattr(TaskResult, "__module__", "scice._pipeline")
        first = SCICE(**kw).fit(blobs).results_
    saved = (tmp_path / "ckpt" / "task_0.pkl").read_bytes()
    assert b"scice._pipeline" in saved and b"scice._fit" not in saved
    assert isinstance(pickle.loads(saved), TaskResult) and pickle.loads(saved).task == Task(key=0, gamma=0.05)
    resumed = SCICE(**kw).fit(blobs).results_
    assert resumed.timings["n_tasks_resumed"] == 2 and resumed.timings["n_leiden_calls"] == 0
    assert resumed == first
