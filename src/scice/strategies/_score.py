"""IC scorers: how similar two labelings are."""

from __future__ import annotations

import numpy as np

from .._similarity import ecs, ecs_matrix
from ._base import ICScorer

__all__ = ["ECSScorer"]


class ECSScorer(ICScorer):
    """Element-centric similarity (the published scICE scorer).

    ``similarity(a, b)`` is the mean over cells of
    ``|A(i) ∩ B(i)| / max(|A(i)|, |B(i)|)``, computed from the contingency table
    of the two labelings in O(n + kA * kB).
    """

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return ecs(a, b)

    def similarity_matrix(self, partitions: np.ndarray) -> np.ndarray:
        return ecs_matrix(partitions)
