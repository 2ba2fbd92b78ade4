"""The refinement schedule of :class:`~scice.strategies.RefineOptimizer`, rule by rule.

Most tests drive the optimizer through a scripted context: it hands out real
:class:`~scice._leiden.TrialSet` objects whose IC after ``d`` refinements is
``script(d)``, so each rule of the published schedule (Julia scICE
``clustering!``, with its three known bugs fixed) can be set up exactly. The
optimizer only talks to ``context.trials``, ``context.refine_all`` and
``context.score``; Leiden itself is exercised by the end-to-end test at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from scice import SCICE
from scice._leiden import TrialSet
from scice._similarity import TrialSetScore
from scice.strategies import RefineOptimizer, Task, resolution_grid
from scice.testing import make_blob_graph

TARGET, LOWER, UPPER = 3, 1e-3, 1e-2
N_CELLS, N_TRIALS = 12, 4


def const(ic: float) -> Callable[[int], float]:
    return lambda depth: ic


def falling(start: float, step: float = 1e-4) -> Callable[[int], float]:
    """An IC that improves with every refinement (never stable, always unstable)."""
    return lambda depth: start - step * depth


def rising(start: float, step: float = 1e-3) -> Callable[[int], float]:
    """An IC that gets worse with every refinement."""
    return lambda depth: start + step * depth


def reaches_1(start: float, depth_at_1: int = 10) -> Callable[[int], float]:
    """An IC that falls linearly from ``start`` to exactly 1 after ``depth_at_1`` refinements."""
    return lambda depth: 1.0 if depth >= depth_at_1 else start - (start - 1.0) * depth / depth_at_1


class ScriptedContext:
    """Stands in for ``OptimizeContext``: trial sets at the grid's resolutions with scripted ICs.

    The ``i``-th lowest grid resolution is candidate ``i`` (median count ==
    target) when ``scripts`` has an ``i``-th entry; the other resolutions give
    another count. ``refined[r]`` lists the candidates refined in round ``r``.
    """

    def __init__(self, scripts, n_iterations: int = 10, max_iterations: int = 150):
        self.n_trials, self.beta, self.objective_function = N_TRIALS, 0.1, "CPM"
        self.n_iterations, self.max_iterations = n_iterations, max_iterations
        grid = resolution_grid(LOWER, UPPER, 11, "CPM")
        self.position = {float(g): i for i, g in enumerate(grid[: len(scripts)])}
        self.scripts = list(scripts)
        self.refined: dict[int, list[int]] = {}

    def _trial_set(self, gamma: float, depth: int) -> TrialSet:
        count = TARGET if gamma in self.position else TARGET + 2
        labels = np.tile(np.arange(N_CELLS) % count, (N_TRIALS, 1))
        return TrialSet(
            gamma=gamma,
            labelings=labels,
            effective_counts=np.full(N_TRIALS, count),
            n_iterations=self.n_iterations + 2 * depth,
            key=(gamma, depth),
        )

    def trials(self, gamma: float) -> TrialSet:
        return self._trial_set(float(gamma), 0)

    def refine_all(self, trial_sets, round_index: int, n_iterations: int = 2):
        assert n_iterations == 2 and round_index not in self.refined
        self.refined[round_index] = [self.position[ts.gamma] for ts in trial_sets]
        return [self._trial_set(ts.gamma, ts.key[1] + 1) for ts in trial_sets]

    def score(self, trial_set: TrialSet) -> TrialSetScore:
        gamma, depth = trial_set.key
        ic = self.scripts[self.position[gamma]](depth) if gamma in self.position else 1.5
        n_part = 1 if ic <= 1.0 else 2
        return TrialSetScore(
            partitions=np.zeros((n_part, N_CELLS), dtype=np.int64),
            counts=np.full(n_part, 1),
            inverse=np.zeros(N_TRIALS, dtype=np.int64),
            similarity=np.eye(n_part),
            ic=float(ic),
        )


def run(scripts, **context_kw):
    """Optimise the scripted task: ``(chosen candidate, refine rows, chosen row, context)``."""
    context = ScriptedContext(scripts, **context_kw)
    outcome = RefineOptimizer().optimize(Task(key=0, target=TARGET, lower=LOWER, upper=UPPER), context)
    rows = [r for r in outcome.diagnostics if r["stage"] in ("refine", "frozen")]
    chosen_row = outcome.diagnostics[-1]
    assert chosen_row["stage"] == "chosen"
    return context.position[outcome.trial_set.gamma], rows, chosen_row, context


def rounds_of(rows) -> int:
    return max((r["round"] for r in rows), default=0)


def test_changing_candidates_are_not_pruned_before_round_10():
    # candidate 2 has the worst IC and gets worse: the simplified schedule pruned it in round 1
    chosen, rows, chosen_row, ctx = run([falling(1.05), falling(1.06), rising(1.20)])
    for r in range(1, 11):
        assert ctx.refined[r] == [0, 1, 2], r
    assert 2 not in ctx.refined[11]  # round 10: its IC rose over its history, so it was pruned
    assert [row["candidate"] for row in rows if row["round"] == 10] == [True, True, False]
    # the improving candidates are never pruned: the cap ends it
    assert chosen == 0 and chosen_row["stop"] == "max_iterations"


def test_a_candidate_that_stopped_changing_is_pruned():
    chosen, rows, chosen_row, ctx = run([const(1.10), falling(1.05), const(1.20)])
    assert all(ctx.refined[r] == [0, 1, 2] for r in range(1, 11))
    # round 10: 2 is stable above the median -> pruned; 0 is stable at the median -> kept but frozen
    assert ctx.refined[11] == [1]
    round_11 = {row["gamma"]: row for row in rows if row["round"] == 11}
    assert [r["stage"] for r in round_11.values()] == ["frozen", "refine"]
    assert [r["candidate"] for r in round_11.values()] == [False, True]  # stable and above the median
    assert ctx.refined[12] == [1] and 13 not in ctx.refined
    assert chosen == 1 and chosen_row["stop"] == "one candidate" and chosen_row["n_iter"] == 10 + 2 * 12


def test_ic_unchanged_within_1e_12_is_unchanged():
    # the same partitions in another trial order give an IC a few ulps away: still stable
    wobble = lambda depth: 1.20 + (3e-13 if depth % 2 else 0.0)  # noqa: E731
    chosen, rows, chosen_row, ctx = run([falling(1.05), falling(1.06), wobble])
    assert 2 in ctx.refined[10] and 2 not in ctx.refined[11]
    assert chosen == 0


def test_unstable_flags_are_pruned_with_the_candidates():
    # round 10: candidate 1 (stable, worst) is pruned; 2 is stable at a kept IC (frozen); 0 and 3 still improve.
    # The published code kept the old flags by position, so candidate 3 would inherit 2's "stable".
    chosen, rows, chosen_row, ctx = run([falling(1.06), const(1.20), const(1.045), falling(1.05)])
    assert ctx.refined[10] == [0, 1, 2, 3]
    assert ctx.refined[11] == [0, 3]
    assert chosen == 3


@pytest.mark.parametrize(
    ("scripts", "max_iterations", "stop", "chosen", "n_rounds"),
    [
        # (a) before (b): a lone candidate stops after one round even at IC 1
        ([lambda d: 1.05 if d == 0 else 1.0], 150, "one candidate", 0, 1),
        # (b) before (d): IC 1 in round 10, where the cap (30) is reached too; the lower of two IC-1 candidates
        ([falling(1.05), falling(1.06), reaches_1(1.07), reaches_1(1.08)], 30, "IC 1", 2, 10),
        # (c) before (d): every candidate stable in round 10, where the cap (30) is reached too
        ([const(1.04), const(1.02), const(1.03)], 30, "all stable", 1, 10),
        # (d) before (e): k_iter = 102 is both >= max_iterations and > 100 with a median above 1.1
        ([falling(1.30, 1e-4), falling(1.40, 1e-4)], 102, "max_iterations", 0, 46),
        # (e): k_iter > 100 with a median IC above 1.1 (the cap would allow 70 rounds)
        ([falling(1.30, 1e-4), falling(1.40, 1e-4), falling(1.50, 1e-4)], 150, "inconsistent", 0, 46),
    ],
    ids=["a-before-b", "b-before-d", "c-before-d", "d-before-e", "e"],
)
def test_stop_rules_in_order(scripts, max_iterations, stop, chosen, n_rounds):
    got, rows, chosen_row, _ = run(scripts, max_iterations=max_iterations)
    assert (got, rounds_of(rows)) == (chosen, n_rounds)
    assert chosen_row["stop"] == stop
    assert chosen_row["n_iter"] == 10 + 2 * n_rounds


def test_stop_rule_order_on_simultaneous_conditions():
    from scice.strategies._optimize import stop_rule

    stable, ics = np.array([True, True]), np.array([1.2, 1.0])
    assert stop_rule(ics[:1], stable[:1], 150, 150) == ("one candidate", 0)
    assert stop_rule(ics, stable, 150, 150) == ("IC 1", 1)
    assert stop_rule(np.array([1.3, 1.2]), stable, 150, 150) == ("all stable", 1)
    assert stop_rule(np.array([1.3, 1.2]), ~stable, 150, 150) == ("max_iterations", 1)
    assert stop_rule(np.array([1.3, 1.2]), ~stable, 102, 150) == ("inconsistent", 1)
    assert stop_rule(np.array([1.12, 1.05]), ~stable, 102, 150) is None  # median <= 1.1: prune and go on
    assert stop_rule(np.array([1.3, 1.2]), ~stable, 100, 150) is None  # k_iter 100 is not past 100


@pytest.mark.parametrize(("n_iterations", "max_iterations", "n_rounds"), [(10, 150, 70), (20, 150, 65), (10, 11, 1)])
def test_the_cap_counts_cumulative_iterations_from_n_iterations(n_iterations, max_iterations, n_rounds):
    chosen, rows, chosen_row, _ = run(
        [falling(1.05, 1e-4), falling(1.06, 1e-4)], n_iterations=n_iterations, max_iterations=max_iterations
    )
    assert rounds_of(rows) == n_rounds and chosen_row["stop"] == "max_iterations"
    assert chosen_row["n_iter"] == n_iterations + 2 * n_rounds


def test_a_cap_at_n_iterations_runs_no_round():
    chosen, rows, chosen_row, ctx = run([falling(1.05), falling(1.04)], max_iterations=10)
    assert ctx.refined == {} and rows == []
    assert chosen == 1 and chosen_row["n_iter"] == 10 and chosen_row["stop"] == "max_iterations"


def test_past_100_iterations_a_median_at_most_1_1_prunes_normally():
    # candidate 1 improves for 45 rounds, then jumps above its old ICs: prunable in round 46 (k_iter 102).
    # The published code skipped pruning past k_iter 100 unless it gave up (median > 1.1).
    late = lambda d: 1.06 - 1e-4 * d if d < 46 else 1.09  # noqa: E731
    chosen, rows, chosen_row, ctx = run([falling(1.05, 1e-4), late])
    assert ctx.refined[45] == [0, 1] and ctx.refined[46] == [0, 1] and ctx.refined[47] == [0]
    assert chosen == 0 and chosen_row["stop"] == "one candidate" and rounds_of(rows) == 47


def test_ties_go_to_the_lower_resolution():
    same = falling(1.05)
    chosen, rows, chosen_row, _ = run([same, same, same], max_iterations=20)
    assert chosen == 0 and rounds_of(rows) == 5 and chosen_row["n_iter"] == 20
    # equal ICs are all at the median: nobody is pruned
    assert all(row["candidate"] for row in rows)


@pytest.mark.parametrize("max_iterations", [14, 31, 60])
def test_n_iter_is_n_iterations_plus_2_per_round(max_iterations):
    chosen, rows, chosen_row, ctx = run([falling(1.05), falling(1.06), falling(1.07)], max_iterations=max_iterations)
    n_rounds = -(-(max_iterations - 10) // 2)
    assert sorted(ctx.refined) == list(range(1, n_rounds + 1))
    assert chosen_row["n_iter"] == 10 + 2 * n_rounds
    assert [row["n_iter"] for row in rows if row["round"] == n_rounds] == [10 + 2 * n_rounds] * 3


def test_refine_iterations_must_be_positive():
    context = ScriptedContext([falling(1.05), falling(1.06)])
    task = Task(key=0, target=TARGET, lower=LOWER, upper=UPPER)
    with pytest.raises(ValueError, match="refine_iterations must be at least 1"):
        RefineOptimizer(refine_iterations=0).optimize(task, context)


def test_real_graph_follows_the_schedule():
    """End to end on noisy blobs: real Leiden, the published schedule in the diagnostics."""
    graph = make_blob_graph(n_blobs=5, size=30, n_bridges=12)
    res = SCICE(cluster_range=(5, 6), n_trials=8, n_bootstrap=20, random_state=0).fit(graph).results_
    diag = res.optimization_diagnostics
    refine = diag[diag["stage"].isin(["refine", "frozen"])]
    assert len(refine), "the graph should need refinement for some target"
    for target, rows in refine.groupby("target"):
        per_round = rows.groupby("round").size()
        n_rounds = int(per_round.index.max())
        assert list(per_round.index) == list(range(1, n_rounds + 1))
        # nothing is pruned before round 10 (no real IC history can be stable sooner)
        early = per_round[per_round.index <= min(10, n_rounds)]
        assert (early == early.iloc[0]).all(), target
        assert n_rounds <= 70
        chosen = diag[(diag["target"] == target) & (diag["stage"] == "chosen")].iloc[0]
        assert chosen["stop"] in {"one candidate", "IC 1", "all stable", "max_iterations", "inconsistent"}
        # n_iter is k_iter = 10 + 2 x rounds; the chosen trials ran 2 more iterations in each round they moved
        own = rows[rows["gamma"] == chosen["gamma"]]
        assert chosen["n_iter"] == 10 + 2 * n_rounds >= 10 + 2 * int((own["stage"] == "refine").sum())
        for result in (c for c in res.clusters if c.source_target_cluster == target):
            assert result.n_iter == chosen["n_iter"]


def test_n_iter_reports_k_iter_even_when_the_chosen_candidate_was_frozen():
    """n_iter is the schedule's k_iter (n_iterations + 2 x rounds), as the published code reports it."""
    # candidate 0 stops changing (stable, so frozen, from round 10 on) and stays lowest; candidate 1 keeps
    # improving, so it is never stable and the cap ends the loop after 70 rounds
    chosen, rows, chosen_row, ctx = run([const(1.02), falling(1.05)])
    assert chosen == 0 and chosen_row["stop"] == "max_iterations"
    assert 0 not in ctx.refined[70]  # frozen: its trials ran only 10 + 2 x 10 iterations
    assert chosen_row["n_iter"] == 10 + 2 * rounds_of(rows) == 150
