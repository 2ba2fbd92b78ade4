"""Every built-in strategy passes its family's conformance suite; broken ones do not."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scice import SCICE
from scice import strategies as S
from scice.testing import check_layout, check_optimizer, check_scorer, check_searcher, check_strategy


@pytest.mark.parametrize(
    "strategy",
    [
        S.ECSScorer(),
        S.BisectionSearcher(),
        S.BisectionSearcher(plateau_fraction=0.0),
        S.FixedResolutions(),
        S.RefineOptimizer(),
        S.GridOptimizer(n_steps=5),
        S.SerialLayout(),
        S.ProcessLayout(),
    ],
    ids=lambda s: type(s).__name__,
)
def test_builtin_strategies_conform(strategy):
    check_strategy(strategy)


def test_registries_name_the_builtins():
    assert S.SEARCHERS["bisection"] is S.BisectionSearcher
    assert S.OPTIMIZERS["refine"] is S.RefineOptimizer and S.OPTIMIZERS["grid"] is S.GridOptimizer
    assert S.SCORERS["ecs"] is S.ECSScorer
    assert S.LAYOUTS["serial"] is S.SerialLayout and S.LAYOUTS["processes"] is S.ProcessLayout


def test_abstract_bases_need_their_one_method():
    for base in (S.Searcher, S.Optimizer, S.ICScorer, S.ParallelLayout):
        with pytest.raises(TypeError, match="abstract"):
            base()


class AsymmetricScorer(S.ICScorer):
    def similarity(self, a, b):
        return 1.0 if np.array_equal(a, b) else float(np.mean(a == b)) * 0.5 + 0.1 * float(a[0] > b[0])


class ReversedLayout(S.SerialLayout):
    def map(self, func, tasks, n_jobs, callback=None):
        return list(reversed(super().map(func, tasks, n_jobs, callback)))


class OutsideOptimizer(S.GridOptimizer):
    def optimize(self, task, context):
        if task.target is None:
            return self.evaluate_fixed(task, context)
        return S.OptimizeOutcome(trial_set=context.trials(task.upper * 10))


class ForgetfulSearcher(S.BisectionSearcher):
    def search(self, targets, context):
        outcome = super().search(targets, context)
        outcome.uncovered.clear()  # loses every uncovered target and one bracketed target
        outcome.intervals.pop(min(outcome.intervals), None)
        return outcome


@pytest.mark.parametrize(
    "check,strategy,match",
    [
        (check_scorer, AsymmetricScorer(), "relabelled partition|not symmetric"),
        (check_layout, ReversedLayout(), "task order"),
        (check_optimizer, OutsideOptimizer(), "outside its interval"),
        (check_searcher, ForgetfulSearcher(), "neither bracketed nor uncovered"),
    ],
)
def test_conformance_suites_catch_broken_strategies(check, strategy, match):
    with pytest.raises(AssertionError, match=match):
        check(strategy)


def test_check_strategy_rejects_non_strategies():
    with pytest.raises(TypeError, match="not a scice strategy"):
        check_strategy(object())


def test_search_cut_short_by_max_probes_warns(pbmc):
    import scice

    def fit(**params):
        est = scice.SCICE(cluster_range=(2, 4), n_trials=10, n_bootstrap=10, random_state=0)
        return est.set_params(**params).fit(pbmc)

    needed = int(fit().results_.timings["n_probes"])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*max_probes")
        assert fit(searcher__max_probes=needed).results_.timings["n_probes"] == needed  # exactly enough: silent
    cap = needed - 1
    with pytest.warns(
        UserWarning, match=rf"stopped at searcher__max_probes={cap} before .*searcher__max_probes={2 * cap}"
    ) as seen:
        assert fit(searcher__max_probes=cap).results_.timings["n_probes"] == cap
    assert [w.filename for w in seen if "max_probes" in str(w.message)] == [__file__]  # attributed to the caller


def test_every_built_in_optimizer_names_the_rule_that_chose(pbmc):
    """k = 8 has no IC-1 grid resolution on pbmc68k_reduced, k = 3 has one."""
    kw = dict(cluster_range=(3, 8), n_trials=6, n_bootstrap=10, random_state=0, max_iterations=14)
    for optimizer, rule in (("grid", "lowest grid IC"), ("converge", "converged"), ("refine", "max_iterations")):
        diag = SCICE(**kw, optimizer=optimizer).fit(pbmc).results_.optimization_diagnostics
        chosen = diag[diag["stage"] == "chosen"].set_index("target")["stop"]
        assert chosen[3] == "grid IC 1" and chosen[8] == rule, (optimizer, chosen.to_dict())
        assert (diag.loc[diag["stage"] != "chosen", "stop"] == "").all()


class HighestICOptimizer(S.GridOptimizer):
    def select(self, candidates, context, task, rows):
        return max(candidates, key=lambda c: context.score(c).ic)


def test_a_grid_subclass_with_its_own_select_is_named_in_stop(pbmc):
    kw = dict(cluster_range=(8, 8), n_trials=6, n_bootstrap=10, random_state=0)
    diag = SCICE(**kw, optimizer=HighestICOptimizer()).fit(pbmc).results_.optimization_diagnostics
    chosen = diag[diag["stage"] == "chosen"].iloc[0]
    grid = diag[diag["candidate"].astype(bool) & (diag["stage"] == "grid")]
    assert chosen["stop"] == "HighestICOptimizer.select" and chosen["trial_ic"] == grid["trial_ic"].max()
