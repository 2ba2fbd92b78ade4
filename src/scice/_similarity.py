"""Element-centric similarity (ECS), the inconsistency coefficient (IC) and friends.

Notation: a *labeling* is an integer label per cell; a *partition* is a labeling up
to renaming of its labels. For two labelings A and B and a cell i,

    ecs_i(A, B) = |A(i) ∩ B(i)| / max(|A(i)|, |B(i)|)

which equals the personalised-PageRank form of element-centric similarity with
alpha = 0.9 (alpha cancels). Everything here works from contingency tables, so one
pair costs O(n + nnz(contingency)), never O(n^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "smallest_int_dtype",
    "canonicalize",
    "unique_partitions",
    "ecs_per_cell",
    "ecs",
    "ecs_matrix",
    "inconsistency",
    "bootstrap_inconsistency",
    "cell_consistency",
    "TrialSetScore",
]


def smallest_int_dtype(max_value: int, min_value: int = 0) -> np.dtype:
    """The smallest signed integer dtype that holds ``min_value..max_value``.

    Raises
    ------
    ValueError
        If the range does not fit in ``int64``.
    """
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= min_value and max_value <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"Labels outside the int64 range ({min_value}..{max_value}) cannot be stored.")


def canonicalize(labels: np.ndarray) -> np.ndarray:
    """Relabel so that labels are 0, 1, 2, ... in order of first appearance.

    Two labelings describe the same partition exactly when their canonical forms
    are equal.
    """
    labels = np.asarray(labels)
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(uniq.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(uniq.size)
    return rank[inverse.ravel()].astype(smallest_int_dtype(max(uniq.size - 1, 0)), copy=False)


def unique_partitions(labelings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collapse labelings into unique partitions.

    Parameters
    ----------
    labelings
        ``(T, n)`` integer array, one labeling per row.

    Returns
    -------
    partitions
        ``(U, n)`` canonical labels of the unique partitions, in order of first
        appearance among the rows.
    counts
        ``(U,)`` how many rows gave each partition.
    inverse
        ``(T,)`` index of each row's partition.
    """
    labelings = np.atleast_2d(np.asarray(labelings))
    canon = [canonicalize(row) for row in labelings]
    index: dict[bytes, int] = {}
    inverse = np.empty(len(canon), dtype=np.int64)
    keep: list[np.ndarray] = []
    for t, row in enumerate(canon):
        key = row.astype(np.int64, copy=False).tobytes()
        u = index.get(key)
        if u is None:
            u = index[key] = len(keep)
            keep.append(row)
        inverse[t] = u
    max_label = max(int(r.max(initial=0)) for r in keep)
    partitions = np.stack([r.astype(smallest_int_dtype(max_label)) for r in keep])
    counts = np.bincount(inverse, minlength=len(keep)).astype(np.int64)
    return partitions, counts, inverse


def _contingency(a: np.ndarray, b: np.ndarray):
    """Non-zero contingency cells of two canonical labelings.

    Returns the row and column labels of each non-zero cell, its count, the
    cluster sizes of ``a`` and ``b``, and the index of each cell's contingency entry.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    kb = int(b.max(initial=0)) + 1
    keys = a * kb + b
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    size_a = np.bincount(a)
    size_b = np.bincount(b)
    return uniq // kb, uniq % kb, counts, size_a, size_b, inverse.ravel()


def ecs_per_cell(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-cell element-centric similarity of two labelings, ``(n,)`` in [0, 1]."""
    a, b = _as_label_pair(a, b)
    x, y, counts, size_a, size_b, inverse = _contingency(a, b)
    per_entry = counts / np.maximum(size_a[x], size_b[y])
    return per_entry[inverse]


def ecs(a: np.ndarray, b: np.ndarray) -> float:
    """Element-centric similarity of two labelings: the mean of :func:`ecs_per_cell`."""
    a, b = _as_label_pair(a, b)
    x, y, counts, size_a, size_b, _ = _contingency(a, b)
    return float(np.sum(counts * counts / np.maximum(size_a[x], size_b[y])) / a.shape[0])


def _as_label_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Checked here, not left to numpy: a length-1 labeling would broadcast silently.
    a, b = _as_labels(a), _as_labels(b)
    if a.shape != b.shape:
        raise ValueError(f"Labelings must have the same length, got {a.shape[0]} and {b.shape[0]}.")
    return a, b


def _as_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).ravel()
    if labels.size and (labels.min() < 0 or labels.max() >= labels.size or labels.dtype.kind not in "iu"):
        return canonicalize(labels)
    return labels


def ecs_matrix(partitions: np.ndarray) -> np.ndarray:
    """Symmetric matrix of pairwise ECS between partitions, diagonal 1."""
    u = partitions.shape[0]
    sim = np.eye(u)
    for i in range(u):
        for j in range(i + 1, u):
            sim[i, j] = sim[j, i] = ecs(partitions[i], partitions[j])
    return sim


def inconsistency(p: np.ndarray, sim: np.ndarray) -> float:
    """IC = 1 / (p^T S p); ``p`` are partition frequencies summing to 1.

    Returns ``inf`` when the quadratic form is not positive (possible only for a
    similarity that can be negative, such as the adjusted Rand index).
    """
    q = float(p @ sim @ p)
    return 1.0 / q if q > 0 else float("inf")


def bootstrap_inconsistency(
    inverse: np.ndarray, sim: np.ndarray, n_bootstrap: int, rng: np.random.Generator
) -> np.ndarray:
    """IC of ``n_bootstrap`` resamples (with replacement) of the trials.

    ``sim`` is computed once for the trial set; a draw only changes the partition
    frequencies, so all draws cost one ``(B, U) x (U, U)`` product.
    """
    t = inverse.shape[0]
    u = sim.shape[0]
    draws = rng.integers(0, t, size=(n_bootstrap, t))
    part = inverse[draws]
    freq = np.zeros((n_bootstrap, u))
    np.add.at(freq, (np.repeat(np.arange(n_bootstrap), t), part.ravel()), 1.0)
    freq /= t
    q = np.einsum("bu,uv,bv->b", freq, sim, freq)
    with np.errstate(divide="ignore"):
        return np.where(q > 0, 1.0 / np.where(q > 0, q, 1.0), np.inf)


def cell_consistency(partitions: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-cell consistency: the p_a p_b-weighted mean of ``ecs_i`` over pairs a != b.

    All ones when there is a single partition.
    """
    u, n = partitions.shape
    if u == 1:
        return np.ones(n)
    total = np.zeros(n)
    weight = 0.0
    for i in range(u):
        for j in range(i + 1, u):
            w = p[i] * p[j]
            total += w * ecs_per_cell(partitions[i], partitions[j])
            weight += w
    return total / weight


@dataclass(frozen=True, eq=False)
class TrialSetScore:
    """The scored unique partitions of one trial set."""

    partitions: np.ndarray
    counts: np.ndarray
    inverse: np.ndarray
    similarity: np.ndarray
    ic: float

    @property
    def frequencies(self) -> np.ndarray:
        return self.counts / self.counts.sum()

    @property
    def best_index(self) -> int:
        """Partition maximising frequency-weighted similarity to the others (argmax S p)."""
        return int(np.argmax(self.similarity @ self.frequencies))
