"""IC scorers: how similar two labelings are."""

from __future__ import annotations

import numpy as np

from .._similarity import ecs
from ._base import ICScorer

__all__ = ["ECSScorer"]


class ECSScorer(ICScorer):
    """Element-centric similarity (the published scICE scorer).

    ``similarity(a, b)`` is the mean over cells of
    ``|A(i) ∩ B(i)| / max(|A(i)|, |B(i)|)``, computed from the contingency table
    of the two labelings in O(n + kA * kB). The similarity matrix is the base
    class's pairwise loop over :meth:`similarity`.
    """

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return ecs(a, b)
