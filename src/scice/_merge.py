"""Effective cluster counts and the small-cluster merge."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._graph import GraphData
from ._similarity import smallest_int_dtype

__all__ = ["effective_counts", "merge_small_clusters", "relabel_by_size"]


def effective_counts(labelings: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """Number of clusters with at least ``min_cluster_size`` cells, per labeling row."""
    labelings = np.atleast_2d(labelings)
    out = np.empty(labelings.shape[0], dtype=np.int64)
    for t, row in enumerate(labelings):
        sizes = np.bincount(np.asarray(row, dtype=np.int64))
        out[t] = int(np.count_nonzero(sizes >= min_cluster_size))
    return out


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters 0..k-1 by decreasing size (ties: order of first appearance)."""
    labels = np.asarray(labels, dtype=np.int64)
    uniq, first, inverse, sizes = np.unique(labels, return_index=True, return_inverse=True, return_counts=True)
    order = np.lexsort((first, -sizes))
    rank = np.empty(uniq.size, dtype=np.int64)
    rank[order] = np.arange(uniq.size)
    return rank[inverse.ravel()].astype(smallest_int_dtype(max(uniq.size - 1, 0)))


def merge_small_clusters(labels: np.ndarray, graph: GraphData, min_cluster_size: int) -> np.ndarray:
    """Merge every cluster smaller than ``min_cluster_size`` into a kept cluster.

    A small cluster joins the kept cluster (size >= ``min_cluster_size``) it shares
    the most edge weight with; ties go to the lowest cluster id. Small clusters that
    touch only other small clusters are resolved in later passes, once their
    neighbours have joined a kept cluster. Small clusters with no path to a kept
    cluster (isolated cells, small components) join the largest cluster. If no
    cluster is large enough, everything forms one cluster.

    The result is relabelled 0..k-1 by decreasing size, so the final count equals
    the effective count of ``labels``.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    if min_cluster_size <= 1:
        return relabel_by_size(labels)
    k = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k)
    kept = sizes >= min_cluster_size
    present = sizes > 0
    if not kept.any():
        return np.zeros(labels.shape[0], dtype=np.int8)
    small = present & ~kept
    if small.any():
        target = np.arange(k)  # cluster -> cluster it is merged into
        src = graph.sources.astype(np.int64)
        dst = graph.targets.astype(np.int64)
        while True:
            pending = np.flatnonzero(small & (target == np.arange(k)))
            if pending.size == 0:
                break
            current = target[labels]
            a, b = current[src], current[dst]
            w = sp.coo_matrix(
                (np.concatenate([graph.weights, graph.weights]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                shape=(k, k),
            ).tocsr()
            sub = w[pending][:, np.flatnonzero(kept)]
            best = np.asarray(sub.argmax(axis=1)).ravel()
            has_edge = np.asarray(sub.max(axis=1).todense()).ravel() > 0
            if not has_edge.any():
                break
            kept_ids = np.flatnonzero(kept)
            target[pending[has_edge]] = kept_ids[best[has_edge]]
        leftover = small & (target == np.arange(k))
        if leftover.any():
            largest = int(np.argmax(np.where(kept, sizes, -1)))
            target[leftover] = largest
        labels = target[labels]
    return relabel_by_size(labels)
