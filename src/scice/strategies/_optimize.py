"""Optimizers: choose the trial set that represents a target cluster count."""

from __future__ import annotations

import numpy as np

from ._base import OptimizeOutcome, Optimizer, Task

__all__ = ["RefineOptimizer", "GridOptimizer", "resolution_grid", "center_out", "grid_order"]


def resolution_grid(lower: float, upper: float, n_steps: int, objective_function: str) -> np.ndarray:
    """``n_steps`` resolutions over ``[lower, upper]``: log-spaced for CPM, linear for modularity."""
    if n_steps == 1 or lower == upper:
        return np.array([np.sqrt(lower * upper) if objective_function == "CPM" else 0.5 * (lower + upper)])
    if objective_function == "CPM":
        return np.geomspace(lower, upper, n_steps)
    return np.linspace(lower, upper, n_steps)


def _row(task: Task, trial_set, score, stage: str, round_index: int, kept: bool) -> dict:
    return {
        "target": task.target,
        "gamma": trial_set.gamma,
        "stage": stage,
        "round": round_index,
        "median_count": trial_set.median_count,
        "trial_ic": score.ic,
        "n_partitions": int(score.partitions.shape[0]),
        "n_iter": trial_set.n_iterations,
        "candidate": kept,
    }


def center_out(n: int) -> np.ndarray:
    """Grid positions from the centre outwards: 5, 4, 6, 3, 7, ... for n = 11."""
    return np.argsort(np.abs(np.arange(n) - (n - 1) / 2.0), kind="stable")


def grid_order(gammas: np.ndarray, hint: float | None, objective_function: str) -> np.ndarray:
    """Order in which to evaluate ``gammas``: nearest to ``hint`` first, else centre-out.

    Distances are in ``log(gamma)`` for CPM; ties go to the smaller resolution.
    """
    if hint is None or not np.isfinite(hint) or (hint <= 0 and objective_function == "CPM"):
        return center_out(gammas.size)
    if objective_function == "CPM":
        dist = np.abs(np.log(gammas) - np.log(hint))
    else:
        dist = np.abs(gammas - hint)
    return np.argsort(dist, kind="stable")


class GridOptimizer(Optimizer):
    """Evaluate a resolution grid over the interval; keep the lowest IC, no refinement.

    Resolutions run nearest-first from the task's ``hint`` (where the search saw
    the target count), or from the centre of the interval outwards without one; a
    trial set at median count k whose IC is exactly 1 is taken at once, since no
    other resolution can beat it. The remaining grid points are then not run.

    Parameters
    ----------
    n_steps : int, default=11
        Grid size over the interval.
    """

    def __init__(self, n_steps: int = 11):
        self.n_steps = n_steps

    def _grid_candidates(self, task: Task, context, rows: list) -> tuple[list, object | None]:
        gammas = resolution_grid(task.lower, task.upper, self.n_steps, context.objective_function)
        candidates = []
        for gamma in gammas[grid_order(gammas, task.hint, context.objective_function)]:
            trial_set = context.trials(float(gamma))
            score = context.score(trial_set)
            is_candidate = trial_set.median_count == task.target
            rows.append(_row(task, trial_set, score, "grid", 0, is_candidate))
            if is_candidate:
                candidates.append(trial_set)
                if score.ic <= 1.0:
                    return candidates, trial_set
        return candidates, None

    def _no_candidate(self, task: Task, rows: list) -> OptimizeOutcome:
        return OptimizeOutcome(
            trial_set=None,
            reason=(
                f"optimisation: no resolution in [{task.lower:.4g}, {task.upper:.4g}] gave a median "
                f"effective count of {task.target}"
            ),
            diagnostics=rows,
        )

    def select(self, candidates: list, context, task: Task, rows: list):
        """Pick among grid candidates (hook): the lowest IC, ties to the lower resolution."""
        order = np.argsort([c.gamma for c in candidates], kind="stable")
        candidates = [candidates[i] for i in order]
        ics = [context.score(c).ic for c in candidates]
        return candidates[int(np.argmin(ics))]

    def optimize(self, task: Task, context) -> OptimizeOutcome:
        if task.target is None:
            return self.evaluate_fixed(task, context)
        rows: list = []
        candidates, perfect = self._grid_candidates(task, context, rows)
        if not candidates:
            return self._no_candidate(task, rows)
        chosen = perfect if perfect is not None else self.select(candidates, context, task, rows)
        for row in rows:
            row["chosen"] = False
        rows.append(_row(task, chosen, context.score(chosen), "chosen", -1, True) | {"chosen": True})
        return OptimizeOutcome(trial_set=chosen, diagnostics=rows)


class RefineOptimizer(GridOptimizer):
    """The scICE optimiser: a resolution grid, then refinement of the candidates.

    Grid resolutions whose median effective count equals the target are the
    candidates; one with IC exactly 1 is taken at once. Otherwise, each round
    continues every candidate's trials from their own labels for
    ``refine_iterations`` more Leiden iterations, recomputes the ICs and keeps the
    candidates with IC <= the median. It stops when one candidate is left, when a
    candidate reaches IC 1, when the candidates' ICs did not change for
    ``patience`` rounds, or after ``max_iterations`` rounds (an estimator
    parameter); the lowest IC wins (ties: lower resolution).

    Parameters
    ----------
    n_steps : int, default=11
        Grid size over the interval.
    refine_iterations : int, default=2
        Leiden iterations added per refinement round.
    patience : int, default=10
        Rounds without any IC change before stopping.
    """

    def __init__(self, n_steps: int = 11, refine_iterations: int = 2, patience: int = 10):
        self.n_steps = n_steps
        self.refine_iterations = refine_iterations
        self.patience = patience

    def select(self, candidates: list, context, task: Task, rows: list):
        candidates = sorted(candidates, key=lambda c: c.gamma)
        history: list[tuple] = []
        round_index = 0
        while len(candidates) > 1 and round_index < context.max_iterations:
            round_index += 1
            candidates = context.refine_all(candidates, round_index, self.refine_iterations)
            ics = np.array([context.score(c).ic for c in candidates])
            keep = ics <= np.median(ics)
            for c, k in zip(candidates, keep, strict=False):
                rows.append(_row(task, c, context.score(c), "refine", round_index, bool(k)))
            if ics.min() <= 1.0:
                return candidates[int(np.argmin(ics))]
            candidates = [c for c, k in zip(candidates, keep, strict=False) if k]
            history.append(tuple(ics[keep].tolist()))
            if len(history) >= self.patience and all(h == history[-1] for h in history[-self.patience :]):
                break
        ics = [context.score(c).ic for c in candidates]
        return candidates[int(np.argmin(ics))]
