"""optimizer="converge": the published grid, then each candidate's trials run to convergence."""

from __future__ import annotations

import numpy as np
import pytest

from scice import SCICE
from scice.strategies import OPTIMIZERS, ConvergeOptimizer, RefineOptimizer
from scice.testing import check_strategy

# k = 8 has no IC-1 grid resolution on pbmc68k_reduced: its candidates are refined
KW = dict(cluster_range=(8, 8), n_trials=10, n_bootstrap=20, random_state=0)


def test_converge_passes_the_optimizer_conformance_suite():
    check_strategy(ConvergeOptimizer())
    check_strategy(ConvergeOptimizer(n_steps=5))
    assert OPTIMIZERS["converge"] is ConvergeOptimizer


@pytest.fixture(scope="module")
def converged(pbmc):
    return SCICE(**KW, optimizer="converge").fit(pbmc).results_


def test_converge_picks_the_lowest_converged_ic(converged):
    diag = converged.optimization_diagnostics
    rows = diag[diag["stage"] == "converge"]
    grid = diag[diag["stage"] == "grid"]
    chosen = diag[diag["stage"] == "chosen"].iloc[0]
    # every grid candidate (median count 8) was run to convergence, once
    assert sorted(rows["gamma"]) == sorted(grid.loc[grid["candidate"].astype(bool), "gamma"])
    assert (rows["n_iter"] == -1).all() and chosen["stop"] == "converged"
    best = rows[rows["trial_ic"] == rows["trial_ic"].min()]
    assert chosen["gamma"] == best["gamma"].min()  # ties go to the lower resolution
    result = converged.clusters[0]
    assert result.n_iter == -1 and result.source_target_cluster == 8


def test_converge_needs_fewer_calls_than_refine(pbmc, converged):
    refined = SCICE(**KW).fit(pbmc).results_
    n_refine, n_converge = refined.timings["n_leiden_calls"], converged.timings["n_leiden_calls"]
    assert n_converge < n_refine / 2, (n_converge, n_refine)
    assert isinstance(SCICE(**KW).get_params()["optimizer"], str)
    assert RefineOptimizer().n_steps == ConvergeOptimizer().n_steps  # the same grid


def test_converge_is_identical_for_n_jobs_1_and_2(pbmc, converged):
    parallel = SCICE(**KW, optimizer="converge", n_jobs=2).fit(pbmc).results_
    assert parallel.parallel_layout["inner_workers"] == 2
    assert parallel.clusters == converged.clusters
    assert parallel.optimization_diagnostics.equals(converged.optimization_diagnostics)
    assert np.array_equal(parallel.clusters[0].labelings, converged.clusters[0].labelings)
