"""The SCICE estimator end to end on real graphs (real igraph Leiden, nothing mocked)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from dataclasses import FrozenInstanceError

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

import scice
from scice import SCICE, SCICEResults
from scice.strategies import ICScorer, ProcessLayout, RefineOptimizer
from scice.testing import blob_graph, check_scorer


# ---------------------------------------------------------------------------
# results of a cluster-range fit
# ---------------------------------------------------------------------------
def test_cluster_range_fit_covers_targets(pbmc_fit, pbmc):
    res = pbmc_fit.results_
    assert isinstance(res, SCICEResults)
    assert res.analysis_mode == "cluster_range"
    assert res.requested_cluster_range.tolist() == [2, 3, 4, 5, 6]
    for k in range(2, 7):
        assert k in res.n_cluster.tolist() or res.uncovered_targets.get(k)
    for c in res.clusters:
        assert c.best_labels.shape == (pbmc.n_obs,)
        assert len(np.unique(c.best_labels)) == c.n_cluster
        assert c.ic_vec.shape == (30,) and np.all(c.ic_vec >= 1.0)
        assert c.ic == np.median(c.ic_vec)
        assert c.labelings.shape[1] == pbmc.n_obs and c.frequencies.sum() == 8
        assert np.all((c.mei >= 0) & (c.mei <= 1 + 1e-12))
        assert c.source_target_cluster in range(2, 7)
    assert pbmc_fit.best_cluster_ == res.best_cluster
    best = res[pbmc_fit.best_cluster_]
    assert np.array_equal(pbmc_fit.labels_, best.best_labels)
    assert res.best_resolution == best.gamma == pbmc_fit.best_resolution_
    assert not res.resolution_search_diagnostics.empty
    assert set(res.target_diagnostics["target"]) == set(range(2, 7))


def test_results_are_frozen_and_picklable(pbmc_fit):
    res = pbmc_fit.results_
    with pytest.raises(FrozenInstanceError):
        res.analysis_mode = "x"
    with pytest.raises(ValueError, match="read-only"):
        res.clusters[0].best_labels[0] = 5
    again = pickle.loads(pickle.dumps(res))
    assert again == res
    assert again is not res


def test_to_frame_and_consistent(pbmc_manual_fit):
    res = pbmc_manual_fit.results_
    frame = res.to_frame()
    assert list(frame.index) == res.n_cluster.tolist()
    assert {"gamma", "ic", "ic_q05", "ic_q95", "n_partitions", "consistent"} <= set(frame.columns)
    threshold = float(np.median(res.ic))
    chosen = res.consistent(threshold)
    assert chosen.tolist() == [k for k, ic in zip(res.n_cluster, res.ic, strict=False) if ic < threshold]
    assert res.consistent(1.0).size == 0
    with pytest.raises(KeyError, match="available counts"):
        res[10_000]


def test_fit_predict_and_input_untouched(pbmc_copy):
    before_uns = set(pbmc_copy.uns)
    before_obs = pbmc_copy.obs.copy()
    graph_before = pbmc_copy.obsp["connectivities"].copy()
    est = SCICE(cluster_range=(3, 4), n_trials=5, n_bootstrap=10, random_state=1)
    labels = est.fit_predict(pbmc_copy)
    assert np.array_equal(labels, est.labels_)
    assert set(pbmc_copy.uns) == before_uns
    pd.testing.assert_frame_equal(pbmc_copy.obs, before_obs)
    assert (pbmc_copy.obsp["connectivities"] != graph_before).nnz == 0


def test_manual_mode_deduplicates_and_uses_gamma(pbmc):
    est = SCICE(resolution=[0.002, 0.02, 0.002, 0.2], n_trials=5, n_bootstrap=10, random_state=0).fit(pbmc)
    res = est.results_
    assert res.analysis_mode == "resolution"
    assert res.resolution_input.tolist() == [0.002, 0.02, 0.2]
    assert len(res.resolution_diagnostics) == 3
    assert all(c.source_target_cluster == -1 for c in res.clusters)
    by_gamma = sorted(res.clusters, key=lambda c: c.gamma)
    counts = [c.n_cluster for c in by_gamma]
    assert counts == sorted(counts) and counts[0] < counts[-1]  # larger CPM gamma, more clusters


def test_one_cluster_is_never_the_best_unless_alone(pbmc):
    """A tiny manual resolution gives one cluster (IC 1, trivially): the best count is a real split."""
    est = SCICE(resolution=[1e-9, 0.02], n_trials=5, n_bootstrap=10, random_state=0).fit(pbmc)
    res = est.results_
    one = res[1]
    assert one.ic == 1.0 and np.all(one.best_labels == 0)
    other = next(c for c in res.clusters if c.n_cluster > 1)
    assert other.ic > one.ic  # the tie rule alone would pick 1
    assert est.best_cluster_ == other.n_cluster == res.best_cluster
    assert len(np.unique(est.labels_)) == other.n_cluster
    alone = SCICE(resolution=[1e-9], n_trials=3, n_bootstrap=5, random_state=0).fit(pbmc)
    assert alone.best_cluster_ == 1


def test_modularity_objective_uses_resolution(pbmc):
    low = SCICE(resolution=[0.3], objective_function="modularity", n_trials=4, n_bootstrap=5, random_state=0).fit(pbmc)
    high = SCICE(resolution=[3.0], objective_function="Modularity", n_trials=4, n_bootstrap=5, random_state=0).fit(pbmc)
    cpm = SCICE(resolution=[0.3], objective_function="CPM", n_trials=4, n_bootstrap=5, random_state=0).fit(pbmc)
    assert low.results_.params["objective_function"] == "modularity"
    assert low.best_cluster_ < high.best_cluster_
    assert low.best_cluster_ != cpm.best_cluster_


def test_modularity_cluster_range(pbmc):
    est = SCICE(cluster_range=(3, 5), objective_function="modularity", n_trials=5, n_bootstrap=10, random_state=0).fit(
        pbmc
    )
    res = est.results_
    for k in (3, 4, 5):
        assert k in res.n_cluster.tolist() or res.uncovered_targets.get(k)
    assert len(res.clusters) >= 2


def test_beta_is_applied(pbmc):
    """Different beta, same seeds: different labelings (igraph really uses beta)."""
    from scice._graph import graph_from_input
    from scice._leiden import LeidenConfig, TrialRunner

    runner = TrialRunner(graph_from_input(pbmc, "connectivities"), LeidenConfig())
    seeds = np.arange(1, 9)
    a = runner.run(0.05, seeds, 2, 0.001).labelings
    b = runner.run(0.05, seeds, 2, 0.5).labelings
    assert not np.array_equal(a, b)


# ---------------------------------------------------------------------------
# reproducibility
# ---------------------------------------------------------------------------
def test_same_random_state_same_results(pbmc):
    kw = dict(cluster_range=(3, 5), n_trials=5, n_bootstrap=20, random_state=7)
    a = SCICE(**kw).fit(pbmc).results_
    b = SCICE(**kw).fit(pbmc).results_
    assert a.clusters == b.clusters
    assert a.resolution_search_diagnostics.equals(b.resolution_search_diagnostics)
    # At an inconsistent resolution the seeds matter: another random_state differs.
    kw = dict(resolution=[0.05], n_trials=5, n_bootstrap=20)
    c1 = SCICE(**kw, random_state=7).fit(pbmc).results_
    c2 = SCICE(**kw, random_state=7).fit(pbmc).results_
    d = SCICE(**kw, random_state=8).fit(pbmc).results_
    assert c1.clusters == c2.clusters
    assert c1.clusters != d.clusters


class WaitingLayout(scice.strategies.ProcessLayout):
    """ProcessLayout that waits for its workers instead of starting in the parent (tests: work must go to workers)."""

    def ready(self):
        return True


def test_n_jobs_and_backends_give_identical_results(pbmc):
    kw = dict(cluster_range=(3, 6), n_trials=5, n_bootstrap=20, random_state=3)
    serial = SCICE(**kw, n_jobs=1).fit(pbmc).results_
    assert serial.timings["n_chunks"] == 0  # all in this process
    two = SCICE(**kw, n_jobs=2, layout=WaitingLayout()).fit(pbmc).results_
    assert (two.parallel_layout["outer_workers"], two.parallel_layout["inner_workers"]) == (4, 2)
    assert two.timings["n_chunks"] > 0  # the workers ran Leiden
    assert two.clusters == serial.clusters
    assert two.optimization_diagnostics.equals(serial.optimization_diagnostics)
    assert two.resolution_search_diagnostics.equals(serial.resolution_search_diagnostics)
    default = SCICE(**kw, n_jobs=2).fit(pbmc).results_  # may start in the parent while workers boot
    assert default.clusters == serial.clusters
    with joblib.parallel_config(backend="threading"):
        threads = SCICE(**kw, n_jobs=2).fit(pbmc).results_
    assert threads.clusters == serial.clusters
    assert threads.parallel_layout["backend"] == "threading" and threads.timings["n_chunks"] > 0
    one_task = SCICE(**kw, n_jobs=2, layout=WaitingLayout(tasks_per_worker=1)).fit(pbmc).results_
    assert one_task.parallel_layout["outer_workers"] == 2
    assert one_task.clusters == serial.clusters


# ---------------------------------------------------------------------------
# sklearn conventions and strategies
# ---------------------------------------------------------------------------
def test_get_set_params_clone_nested():
    est = SCICE(cluster_range=(2, 8), n_trials=5)
    params = est.get_params()
    assert params["cluster_range"] == (2, 8) and params["scorer"] == "ecs"
    est2 = clone(est).set_params(n_trials=30, optimizer__n_steps=5, searcher__plateau_fraction=0.0)
    assert est.n_trials == 5 and est2.n_trials == 30
    assert isinstance(est2.optimizer, RefineOptimizer) and est2.optimizer.n_steps == 5
    assert est2.get_params()["optimizer__n_steps"] == 5
    assert est2.get_params()["searcher__plateau_fraction"] == 0.0
    est3 = clone(est2)
    assert est3.optimizer is not est2.optimizer and est3.optimizer.n_steps == 5


def test_nested_params_change_the_run(pbmc):
    kw = dict(cluster_range=(4, 5), n_trials=5, n_bootstrap=10, random_state=0)
    exact = SCICE(**kw).set_params(searcher__plateau_fraction=0.0).fit(pbmc)
    fast = SCICE(**kw).fit(pbmc)
    assert exact.results_.timings["n_probes"] > fast.results_.timings["n_probes"]


class ARIScorer(ICScorer):
    """A user scorer: adjusted Rand index instead of element-centric similarity."""

    def similarity(self, a, b):
        return adjusted_rand_score(a, b)


def test_user_scorer_conforms_and_changes_result(pbmc):
    check_scorer(ARIScorer())
    kw = dict(resolution=[0.02, 0.05], n_trials=6, n_bootstrap=20, random_state=0)
    ecs_res = SCICE(**kw).fit(pbmc).results_
    ari_res = SCICE(**kw, scorer=ARIScorer()).fit(pbmc).results_
    assert not np.allclose(ecs_res.ic, ari_res.ic)
    for c in ari_res.clusters:  # the stored trial IC is 1 / (p^T S p) with S from ARI
        p = c.frequencies / c.frequencies.sum()
        sim = np.array([[adjusted_rand_score(x, y) for y in c.labelings] for x in c.labelings])
        assert abs(c.trial_ic - 1.0 / (p @ sim @ p)) < 1e-12


def test_strategy_by_name_and_errors():
    with pytest.raises(ValueError, match="Unknown scorer 'ari'.*'ecs'"):
        SCICE(resolution=[0.1], scorer="ari").fit(blob_graph())
    with pytest.raises(TypeError, match="optimizer must be the name of a built-in"):
        SCICE(resolution=[0.1], optimizer=42).fit(blob_graph())


def test_fit_sparse_matrix_and_no_cell_names():
    est = SCICE(cluster_range=(2, 4), n_trials=5, n_bootstrap=10, random_state=0).fit(blob_graph(bridge=3))
    res = est.results_
    assert res.cell_names is None
    assert set(res.n_cluster.tolist()) >= {4}
    assert res[4].ic == 1.0


# ---------------------------------------------------------------------------
# parameter errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params,error,match",
    [
        ({}, ValueError, "Neither cluster_range nor resolution"),
        ({"cluster_range": (2, 4), "resolution": [0.1]}, ValueError, "Both cluster_range and resolution"),
        ({"cluster_range": (5, 2)}, ValueError, r"reversed.*Did you mean \(2, 5\)"),
        ({"cluster_range": (1, 4)}, ValueError, r"\[2, n_cells\]"),
        ({"cluster_range": (2, 10_000)}, ValueError, r"\[2, n_cells\] = \[2, 160\]"),
        ({"cluster_range": (2, 3, 4)}, ValueError, "inclusive pair"),
        ({"cluster_range": "2-5"}, TypeError, "cluster_range must be a tuple"),
        ({"resolution": [0.1, -1.0]}, ValueError, "positive and finite"),
        ({"resolution": 0}, ValueError, "positive and finite"),
        ({"resolution": []}, ValueError, "resolution is empty"),
        ({"resolution": [0.1], "n_trials": 0}, ValueError, "n_trials must be at least 2"),
        ({"resolution": [0.1], "n_trials": 2.5}, TypeError, "n_trials must be an integer"),
        ({"resolution": [0.1], "objective_function": "RB"}, ValueError, "objective_function must be 'CPM' or"),
        ({"resolution": [0.1], "n_jobs": 0}, ValueError, "n_jobs must be a positive integer or -1"),
        ({"resolution": [0.1], "beta": 0}, ValueError, "beta must be > 0"),
        ({"resolution": [0.1], "ic_threshold": 0.5}, ValueError, "ic_threshold must be >= 1"),
    ],
)
def test_bad_parameters(params, error, match):
    with pytest.raises(error, match=match):
        SCICE(**params).fit(blob_graph())


def test_results_equality_ignores_run_metadata_only(pbmc):
    kw = dict(cluster_range=(3, 4), n_trials=4, n_bootstrap=10, random_state=5)
    a = SCICE(**kw).fit(pbmc).results_
    b = SCICE(**kw, n_jobs=2).fit(pbmc).results_
    assert a.timings != b.timings and a.parallel_layout != b.parallel_layout
    assert a == b
    c = SCICE(**{**kw, "n_bootstrap": 11}).fit(pbmc).results_
    assert a != c


def test_verbose_prints_progress_in_a_plain_script(tmp_path):
    """No logging configured (Python's fallback shows only warnings): verbose=True still reports."""
    script = tmp_path / "run.py"
    script.write_text(
        "import scice\n"
        "from scice.testing import make_blob_graph\n"
        "g = make_blob_graph(3, 30, 6, 0, n_bridges=2)\n"
        "scice.SCICE(cluster_range=(2, 4), n_trials=3, n_bootstrap=5, random_state=0, verbose=True).fit(g)\n"
        "scice.SCICE(cluster_range=(2, 4), n_trials=3, n_bootstrap=5, random_state=0).fit(g)\n"
        "print('END')\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "END"
    lines = [line for line in out.stderr.splitlines() if line.startswith("scice:")]
    assert any("cluster range mode" in line for line in lines)
    assert any(line.startswith("scice: search used") for line in lines)
    assert any(line.startswith("scice: done in") for line in lines)
    assert sum(line.startswith("scice: done in") for line in lines) == 1  # the quiet fit said nothing


def test_verbose_respects_configured_logging(pbmc, capsys):
    import logging

    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    log = logging.getLogger("scice")
    handler = Collect()
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    try:
        SCICE(resolution=[0.005], n_trials=2, n_bootstrap=5, random_state=0, verbose=True).fit(pbmc)
        assert log.level == logging.WARNING and log.handlers == [handler]  # both restored after the fit
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    assert any(r.getMessage().startswith("scice: done in") for r in records)
    assert "scice: done in" not in capsys.readouterr().err  # the application's handler, not a second one


class FixedGammaOptimizer(scice.strategies.Optimizer):
    """Takes the trial set at a given resolution for each target (a user strategy)."""

    def __init__(self, gammas=None):
        self.gammas = gammas

    def optimize(self, task, context):
        from scice.strategies import OptimizeOutcome

        return OptimizeOutcome(trial_set=context.trials(self.gammas[task.target]))


def test_target_status_names_the_target_whose_result_is_kept(pbmc):
    # Both targets take the same 4-cluster trial set: target 3's result is rekeyed to 4 and,
    # coming first with an equal IC, is the one kept; target 4 is covered, not returned.
    gamma4 = 2.2e-4
    est = SCICE(
        cluster_range=(3, 4),
        n_trials=4,
        n_bootstrap=10,
        random_state=0,
        optimizer=FixedGammaOptimizer({3: gamma4, 4: gamma4}),
    ).fit(pbmc)
    res = est.results_
    assert res.n_cluster.tolist() == [4] and res[4].source_target_cluster == 3
    status = res.target_diagnostics.set_index("target")["status"]
    assert status[3] == "uncovered" and status[4] == "covered"
    assert res.uncovered_targets[3].startswith("rekeyed: the result for target 3 has 4 clusters")


def test_graph_key_is_recorded_only_for_anndata_fits(pbmc_copy, blobs):
    from scice.legacy import to_legacy_dict

    kw = dict(resolution=[0.05], n_trials=2, n_bootstrap=5, random_state=0)
    on_matrix = SCICE(**kw).fit(blobs).results_
    assert on_matrix.params["graph_key"] == "" and to_legacy_dict(on_matrix)["graph_key"] == ""
    pbmc_copy.obsp["knn"] = pbmc_copy.obsp["connectivities"]
    on_adata = SCICE(**kw, graph_key="knn").fit(pbmc_copy).results_
    assert on_adata.params["graph_key"] == "knn" and to_legacy_dict(on_adata)["graph_key"] == "knn"


# ---------------------------------------------------------------------------
# set_params with layout="auto", sklearn tags and API checks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_layout_params_do_not_depend_on_n_jobs(n_jobs):
    # "auto" given a layout parameter is the process layout, whatever n_jobs is
    est = SCICE(n_jobs=n_jobs).set_params(layout__inner_min_edges=10)
    assert isinstance(est.layout, ProcessLayout) and est.layout.inner_min_edges == 10
    for params in (
        {"layout": "processes", "layout__inner_min_edges": 10},
        {"layout__inner_min_edges": 10, "layout": "processes"},
        {"layout": "auto", "layout__inner_min_edges": 10},
    ):
        est = SCICE(n_jobs=n_jobs).set_params(**params)
        assert isinstance(est.layout, ProcessLayout) and est.layout.inner_min_edges == 10


def test_set_params_outcome_does_not_depend_on_call_order():
    first_jobs = SCICE().set_params(n_jobs=2).set_params(layout__tasks_per_worker=3)
    first_layout = SCICE().set_params(layout__tasks_per_worker=3).set_params(n_jobs=2)
    assert first_jobs.get_params(deep=True) == {
        **first_layout.get_params(deep=True),
        "layout": first_jobs.layout,
    }
    assert repr(first_jobs.layout) == repr(first_layout.layout) == "ProcessLayout(tasks_per_worker=3)"


@pytest.mark.parametrize("n_jobs", [1, 2, -1])
@pytest.mark.parametrize("layout", ["auto", "serial", "processes", "instance"])
def test_set_params_of_own_deep_params_is_a_no_op(n_jobs, layout):
    layout = ProcessLayout(inner_min_edges=10) if layout == "instance" else layout
    est = SCICE(cluster_range=(2, 5), n_jobs=n_jobs, layout=layout, optimizer=RefineOptimizer(n_steps=5))
    before = est.get_params(deep=True)
    for keys in (list(before), list(reversed(before))):
        est.set_params(**{k: before[k] for k in keys})
        after = est.get_params(deep=True)
        assert after.keys() == before.keys()
        assert {k: v for k, v in after.items() if k not in ("layout", "optimizer")} == {
            k: v for k, v in before.items() if k not in ("layout", "optimizer")
        }
        assert after["layout"] is before["layout"] and after["optimizer"] is before["optimizer"]


def test_sklearn_tags_say_square_sparse_input():
    pytest.importorskip("sklearn", minversion="1.6")  # __sklearn_tags__ is read from 1.6 on
    from sklearn.utils import get_tags

    tags = get_tags(SCICE(resolution=[0.1]))
    assert tags.input_tags.pairwise and tags.input_tags.sparse
    assert tags.non_deterministic and not get_tags(SCICE(random_state=0)).non_deterministic


@pytest.mark.parametrize(
    "check",
    [
        "check_no_attributes_set_in_init",
        "check_parameters_default_constructible",
        "check_get_params_invariance",
        "check_set_params",
        "check_estimators_overwrite_params",
    ],
)
def test_sklearn_api_checks(check):
    # SCICE fits square cell graphs, so sklearn's full estimator suite (samples x
    # features data) does not apply; these API checks do. overwrite_params fits on
    # a square kernel matrix, which needs the pairwise tag (sklearn >= 1.6).
    from sklearn.utils import estimator_checks

    if check == "check_estimators_overwrite_params":
        pytest.importorskip("sklearn", minversion="1.6")
    est = SCICE(resolution=[0.5], n_trials=2, n_bootstrap=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The graph has .* self loop", category=UserWarning)
        getattr(estimator_checks, check)("SCICE", est)


# ---------------------------------------------------------------------------
# timings
# ---------------------------------------------------------------------------
_TIMING_KEYS = [
    "n_leiden_calls",
    "n_cache_hits",
    "leiden_seconds",
    "scoring_seconds",
    "n_probes",
    "search_seconds",
    "n_tasks_resumed",
    "optimize_seconds",
    "task_seconds",
    "n_chunks",
    "n_graph_sends",
    "n_chunks_resent",
    "total_seconds",
    "worker_seconds",
]


def test_timings_keep_their_keys_and_order(blobs, tmp_path):
    # stored results keep the key order of results_.timings
    kw = dict(cluster_range=(2, 4), n_trials=3, n_bootstrap=5, random_state=0)
    timings = SCICE(**kw, checkpoint=tmp_path / "ckpt").fit(blobs).results_.timings
    assert list(timings) == _TIMING_KEYS
    assert timings["n_probes"] > 0 and timings["n_leiden_calls"] > 0 and timings["n_tasks_resumed"] == 0
    resumed = SCICE(**kw, checkpoint=tmp_path / "ckpt").fit(blobs).results_.timings
    assert list(resumed) == _TIMING_KEYS[:5] + ["search_resumed"] + _TIMING_KEYS[5:]
    assert resumed["search_resumed"] == 1 and resumed["n_leiden_calls"] == 0 and resumed["n_probes"] == 0
    manual = SCICE(resolution=[0.05], n_trials=2, n_bootstrap=5, random_state=0).fit(blobs).results_.timings
    assert list(manual) == _TIMING_KEYS and manual["n_probes"] == 0
    assert manual["worker_seconds"] == manual["total_seconds"]  # serial: this process ran Leiden
