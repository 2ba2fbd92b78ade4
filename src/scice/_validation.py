"""Parameter checks with one error wording.

Every message names the parameter, says what was expected, what was received,
and (where it helps) what to do instead.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._warn import warn_from_caller

__all__ = [
    "check_int",
    "check_real",
    "check_cluster_range",
    "check_resolution",
    "check_mode",
]


def _fmt(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_int(
    value: object,
    name: str,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
) -> int:
    """Return ``value`` as ``int`` or raise a clear ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_fmt(value)} of type {type(value).__name__}.")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}.")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}.")
    return value


def check_real(
    value: object,
    name: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_inclusive: bool = True,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as ``float`` or raise a clear ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_fmt(value)} of type {type(value).__name__}.")
    value = float(value)
    if np.isnan(value) or (np.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    if min_value is not None:
        if min_inclusive and value < min_value:
            raise ValueError(f"{name} must be >= {min_value}, got {value}.")
        if not min_inclusive and value <= min_value:
            raise ValueError(f"{name} must be > {min_value}, got {value}.")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}.")
    return value


def check_mode(cluster_range: object, resolution: object) -> str:
    """Decide the analysis mode; exactly one of the two must be given."""
    if cluster_range is None and resolution is None:
        raise ValueError(
            "Neither cluster_range nor resolution was given. Pass cluster_range=(lo, hi) to search "
            "for cluster counts lo..hi, or resolution=[...] to evaluate given Leiden resolutions."
        )
    if cluster_range is not None and resolution is not None:
        raise ValueError(
            "Both cluster_range and resolution were given; they select different modes. "
            "Pass only one: cluster_range=(lo, hi) or resolution=[...]."
        )
    return "cluster_range" if cluster_range is not None else "resolution"


def check_cluster_range(cluster_range: object, n_cells: int) -> np.ndarray:
    """Return the sorted, unique target cluster counts.

    A ``tuple`` is always an inclusive pair ``(lo, hi)``; a ``range``, ``list`` or
    array is always the explicit list of targets.
    """
    if isinstance(cluster_range, tuple):
        if len(cluster_range) != 2:
            raise ValueError(
                f"cluster_range given as a tuple must be an inclusive pair (lo, hi), got {_fmt(cluster_range)}. "
                "Pass a list such as [2, 5, 9] for explicit targets."
            )
        lo = check_int(cluster_range[0], "cluster_range[0]")
        hi = check_int(cluster_range[1], "cluster_range[1]")
        if lo > hi:
            raise ValueError(
                f"cluster_range=({lo}, {hi}) is reversed: the lower bound must not exceed the upper bound. "
                f"Did you mean ({hi}, {lo})?"
            )
        targets = np.arange(lo, hi + 1)
    elif isinstance(cluster_range, (range, list, np.ndarray)):
        values = list(cluster_range)
        if len(values) == 0:
            raise ValueError("cluster_range is empty; give at least one target cluster count.")
        targets = np.array([check_int(v, "cluster_range element") for v in values], dtype=np.int64)
    else:
        raise TypeError(
            "cluster_range must be a tuple (lo, hi) or a list/range/array of target counts, "
            f"got {type(cluster_range).__name__}."
        )
    if targets.min() < 2 or targets.max() > n_cells:
        raise ValueError(
            f"cluster_range targets must lie in [2, n_cells] = [2, {n_cells}], got "
            f"{int(targets.min())}..{int(targets.max())}. k = 1 is never a target (one cluster is always "
            "consistent) and a graph cannot have more clusters than cells."
        )
    return np.unique(targets)


def check_resolution(resolution: object) -> np.ndarray:
    """Return the resolutions with repeats removed, input order kept."""
    if isinstance(resolution, numbers.Real) and not isinstance(resolution, bool):
        values = [resolution]
    elif isinstance(resolution, (list, tuple, range, np.ndarray)):
        values = list(np.asarray(resolution).ravel()) if isinstance(resolution, np.ndarray) else list(resolution)
    else:
        raise TypeError(f"resolution must be a number or a list of numbers, got {type(resolution).__name__}.")
    if not values:
        raise ValueError("resolution is empty; give at least one Leiden resolution (gamma).")
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"resolution values must be real numbers, got {_fmt(v)}.")
        v = float(v)
        if not np.isfinite(v) or v <= 0:
            raise ValueError(
                f"resolution values must be positive and finite, got {v}. Useful CPM resolutions on a "
                "kNN connectivities graph are about 1e-5 .. 1e-2."
            )
        if v not in out:
            out.append(v)
    return np.asarray(out, dtype=np.float64)


#: Below this many trials the IC takes only a few distinct values: a warning says so.
COARSE_N_TRIALS = 10


def check_n_trials(value: object) -> int:
    """``n_trials`` as ``int``: at least 2 (one trial cannot disagree with itself); warn below 10."""
    n_trials = check_int(value, "n_trials")
    if n_trials < 2:
        raise ValueError(
            f"n_trials must be at least 2, got {n_trials}: the IC measures how much repeated Leiden trials "
            "disagree, and a single trial cannot disagree with itself (its IC would be 1 for every count). "
            "Use n_trials=15 (the default) or more."
        )
    if n_trials < COARSE_N_TRIALS:
        warn_from_caller(
            f"n_trials={n_trials} gives a coarse IC (few trials can only disagree in a few ways); "
            f"use at least {COARSE_N_TRIALS} (default 15) for results to report.",
            UserWarning,
        )
    return n_trials


#: The largest integer seed numpy's RandomState accepts.
MAX_SEED = 2**32 - 1


def check_random_state_param(value: object) -> None:
    """Refuse a ``random_state`` that cannot seed the run, naming the parameter and the fix."""
    if value is None or isinstance(value, (np.random.RandomState, np.random.Generator)):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"random_state must be None, an integer in [0, 2**32 - 1], a numpy RandomState or a numpy "
            f"Generator, got {_fmt(value)} of type {type(value).__name__}."
        )
    if not 0 <= int(value) <= MAX_SEED:
        raise ValueError(f"random_state must be an integer in [0, 2**32 - 1] (or None), got {int(value)}.")


def random_state_rng(value: object) -> np.random.RandomState:
    """The RandomState every seed of a fit is drawn from.

    A numpy ``Generator`` (scanpy's ``rng``) is used by drawing one seed from it,
    so the fit advances it once and is reproducible from the generator's state.
    """
    check_random_state_param(value)
    if isinstance(value, np.random.Generator):
        return np.random.RandomState(int(value.integers(0, MAX_SEED, endpoint=True)))
    from sklearn.utils import check_random_state

    return check_random_state(value)
