"""Cluster labels of results as AnnData columns: aligned ids, string categories, isolated cells.

:func:`scice.get_robust_labels`, :func:`scice.tl.scice`, :func:`scice.get.labels`
and the plots all read labels through here, so the ids of a count are the
same wherever they are shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._align import align_labels

__all__ = ["check_threshold", "consistent_labels", "isolated_cells", "label_categorical", "resolve_threshold"]


def check_threshold(threshold: Any, none_means: str | None = "no threshold line") -> float:
    """``threshold`` as a float; ``None`` means no threshold (``inf``).

    ``none_means`` is what ``None`` does for the caller, for the error messages;
    ``none_means=None``: ``None`` is refused like any other non-number.
    """
    accepted = "a number (e.g. 1.005)" if none_means is None else f"a number (e.g. 1.005) or None ({none_means})"
    if threshold is None and none_means is not None:
        return float("inf")
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be {accepted}, got {threshold!r}.") from None
    if np.isnan(value):
        or_none = "" if none_means is None else f", or None for {none_means}"
        raise ValueError(f"threshold is NaN; pass a number such as 1.005{or_none}.")
    return value


def resolve_threshold(threshold: Any, results: Any) -> float:
    """``threshold`` of the front end: ``None`` is the ``ic_threshold`` the results were computed with."""
    value = results.ic_threshold if threshold is None else threshold
    return check_threshold(value, none_means="the ic_threshold of the results")


def label_categorical(labels: np.ndarray) -> pd.Categorical:
    """Labels as a categorical of strings ("0", "1", ...), categories in numeric order (as scanpy's leiden)."""
    labels = np.asarray(labels, dtype=np.int64)
    codes = np.unique(labels)
    return pd.Categorical.from_codes(np.searchsorted(codes, labels), categories=[str(c) for c in codes.tolist()])


def consistent_labels(results: Any, threshold: float) -> dict[int, np.ndarray]:
    """Count -> ``best_labels`` with ids aligned across the counts with IC below ``threshold``."""
    return align_labels({c.n_cluster: c.best_labels for c in results.clusters if c.ic < threshold})


def isolated_cells(results: Any) -> np.ndarray:
    """Cells whose per-cell consistency is NaN in every result: the graph gives them no edge."""
    if not results.clusters:
        return np.zeros(0, dtype=bool)
    return np.all([np.isnan(c.mei) for c in results.clusters], axis=0)
