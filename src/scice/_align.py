"""Cluster ids that keep their meaning from one cluster count to the next.

Leiden numbers its clusters afresh at every resolution, so cluster 3 at k = 5
and cluster 3 at k = 6 are usually unrelated. :func:`align_labels` renumbers the
labelings of a sequence of cluster counts so that a cluster keeps the id of the
cluster at the previous count that holds most of its cells: the largest child
of a parent keeps the parent's id and the other children get new ids, so a
colour keeps one meaning along k. :func:`label_flows` tabulates how many cells
move from each cluster at one count to each cluster at the next (the edges of a
clustree-style tree, :mod:`scice._tree`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["align_labels", "align_layers", "label_flows"]

FLOW_COLUMNS = ["k_prev", "k", "parent", "child", "n_cells", "fraction_of_child", "fraction_of_parent"]


def _check_labelings(labels_by_k: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The labelings as 1-D int64 arrays of one length, sorted by count."""
    checked: dict[int, np.ndarray] = {}
    n_cells = None
    for k in sorted(labels_by_k):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"Cluster counts must be integers, got {k!r} ({type(k).__name__}).")
        labels = np.asarray(labels_by_k[k])
        if labels.ndim != 1:
            raise ValueError(f"The labels of k={k} must be a 1-D array (one label per cell), got shape {labels.shape}.")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            as_int = labels.astype(np.int64)
            if not np.array_equal(as_int, labels):
                raise TypeError(f"The labels of k={k} must be integers, got dtype {labels.dtype}.")
            labels = as_int
        if n_cells is None:
            n_cells = labels.size
        elif labels.size != n_cells:
            raise ValueError(
                f"Every labeling must label the same cells: k={k} has {labels.size} labels, the first has {n_cells}."
            )
        checked[int(k)] = labels.astype(np.int64, copy=False)
    return checked


def _codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster codes 0..C-1 per cell, cluster sizes, and each cluster's lowest cell index."""
    _, first, codes = np.unique(labels, return_index=True, return_inverse=True)
    return codes.ravel(), np.bincount(codes.ravel()), first


def _contingency(parents: np.ndarray, n_parents: int, children: np.ndarray, n_children: int) -> np.ndarray:
    """``(n_parents, n_children)`` cell counts."""
    flat = parents * n_children + children
    return np.bincount(flat, minlength=n_parents * n_children).reshape(n_parents, n_children)


def _first_ids(labels: np.ndarray) -> np.ndarray:
    """Ids 0..C-1 by decreasing size (ties: the cluster holding the lower cell index first)."""
    codes, sizes, first = _codes(labels)
    order = np.lexsort((first, -sizes))
    ids = np.empty(order.size, dtype=np.int64)
    ids[order] = np.arange(order.size)
    return ids[codes]


def _child_ids(parent_ids: np.ndarray, labels: np.ndarray, next_id: int) -> tuple[np.ndarray, int]:
    """Ids of the clusters of ``labels`` given the aligned ids of the previous count.

    Returns the aligned labels and the next unused id.
    """
    parent_values, parent_codes = np.unique(parent_ids, return_inverse=True)
    child_codes, sizes, first = _codes(labels)
    table = _contingency(parent_codes.ravel(), parent_values.size, child_codes, sizes.size)
    # Main parent of each child: most shared cells; ties go to the parent with the smaller id
    # (argmax returns the first maximum and parent_values is sorted).
    main_parent = np.argmax(table, axis=0)
    shared = table[main_parent, np.arange(sizes.size)]
    child_id = np.full(sizes.size, -1, dtype=np.int64)
    # Heir of each parent: among the children it is the main parent of, the one taking most of its
    # cells; ties: the larger child, then the one holding the lower cell index.
    has_heir: set[int] = set()
    for code in np.lexsort((first, -sizes, -shared)):
        parent = int(main_parent[code])
        if parent not in has_heir:
            has_heir.add(parent)
            child_id[code] = parent_values[parent]
    # Every other child is new: fresh ids by decreasing size (ties: lower cell index), never reused.
    for code in np.lexsort((first, -sizes)):
        if child_id[code] < 0:
            child_id[code] = next_id
            next_id += 1
    return child_id[child_codes], next_id


def align_labels(labels_by_k: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Renumber the labelings of several cluster counts so that ids persist along k.

    The counts are taken in increasing order. The first count's clusters get ids
    ``0..C-1`` by decreasing size. At each next count, every cluster (a *child*)
    has a *main parent*: the cluster of the previous count that holds most of its
    cells. Of the children of one main parent, the one that takes most of the
    parent's cells (the largest child) keeps the parent's id; every other child
    gets a new id. So a pure split of one cluster in two keeps one id and adds
    one, and a cluster that stays as it is keeps its id.

    Parameters
    ----------
    labels_by_k : mapping of int to array of int
        Cluster count -> one label per cell (any integer ids, e.g.
        :attr:`ClusterResult.best_labels <scice.ClusterResult.best_labels>`).
        Every labeling labels the same cells in the same order. Pass only the
        counts to align (e.g. the consistent ones): each count is aligned to
        the previous count in this mapping.

    Returns
    -------
    dict of int to numpy.ndarray
        Count -> aligned int64 labels, in increasing order of count.

    Raises
    ------
    TypeError
        If a count or a label is not an integer.
    ValueError
        If a labeling is not 1-D or the labelings differ in length.

    Notes
    -----
    Ids are small non-negative integers and are never reused: a new cluster
    gets one more than the largest id given so far, so an id names one lineage
    across the whole sequence (for a nested sequence of splits the ids at count
    k are exactly ``0..k-1``). A parent whose cells all went to clusters with
    other main parents has no heir, and its id does not appear at that count.

    Ties are broken without looking at the input's label values, so renaming
    the clusters of any input gives the same result:

    - main parent: the parent with the smaller aligned id;
    - heir of a parent: the larger child, then the child holding the cell with
      the lower index (cells are numbered by their position in the arrays);
    - order of new ids, and of the first count's ids: decreasing size, then the
      cluster holding the lower cell index.

    Examples
    --------
    >>> align_labels({2: np.array([0, 0, 0, 1, 1]), 3: np.array([2, 2, 1, 0, 0])})
    {2: array([0, 0, 0, 1, 1]), 3: array([0, 0, 2, 1, 1])}
    """
    labelings = _check_labelings(labels_by_k)
    aligned: dict[int, np.ndarray] = {}
    previous = None
    next_id = 0
    for k, labels in labelings.items():
        if previous is None:
            ids = _first_ids(labels)
            next_id = int(ids.max(initial=-1)) + 1
        else:
            ids, next_id = _child_ids(previous, labels, next_id)
        aligned[k] = ids
        previous = ids
    return aligned


def align_layers(labels_by_k: Mapping[int, np.ndarray], consistent: Mapping[int, bool]) -> dict[int, np.ndarray]:
    """Aligned ids for every count, where the consistent counts keep the ids of :func:`align_labels` among themselves.

    The consistent counts are aligned to one another alone (so their ids are
    those of the ``<key>_k<k>`` columns of :func:`scice.tl.scice` and of
    :func:`scice.get_robust_labels`). Every other count is then aligned to the
    closest count below it that already has ids (or, below the first consistent
    count, to the closest consistent count above it), and its new clusters get
    ids above every id in use, so an id never names two lineages.

    Parameters
    ----------
    labels_by_k : mapping of int to array of int
        Count -> one label per cell.
    consistent : mapping of int to bool
        Count -> whether it is consistent; a count missing here is not.

    Returns
    -------
    dict of int to numpy.ndarray
        Count -> aligned int64 labels, in increasing order of count. Without a
        consistent count this is :func:`align_labels` of every count.
    """
    labelings = _check_labelings(labels_by_k)
    strong = [k for k in labelings if consistent.get(k, False)]
    if not strong:
        return align_labels(labelings)
    ids = align_labels({k: labelings[k] for k in strong})
    next_id = int(max(int(v.max(initial=-1)) for v in ids.values())) + 1
    for k in labelings:
        if k in ids:
            continue
        below = [j for j in ids if j < k]
        reference = ids[max(below)] if below else ids[min(j for j in strong if j > k)]
        ids[k], next_id = _child_ids(reference, labelings[k], next_id)
    return {k: ids[k] for k in labelings}


def label_flows(aligned: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """Cells flowing between the clusters of consecutive counts.

    Parameters
    ----------
    aligned : mapping of int to array of int
        Count -> labels of the same cells, usually the output of :func:`align_labels`.

    Returns
    -------
    pandas.DataFrame
        One row per (parent, child) pair that shares at least one cell, with
        columns ``k_prev`` and ``k`` (consecutive counts of ``aligned``),
        ``parent`` (cluster id at ``k_prev``), ``child`` (cluster id at ``k``),
        ``n_cells`` (cells in both), ``fraction_of_child`` (``n_cells`` over the
        child's size) and ``fraction_of_parent`` (``n_cells`` over the parent's
        size). Sorted by ``k``, ``parent``, ``child``; empty (with these columns)
        for fewer than two counts.
    """
    labelings = _check_labelings(aligned)
    frames = []
    ks = list(labelings)
    for k_prev, k in zip(ks[:-1], ks[1:], strict=True):
        parent_values, parent_codes = np.unique(labelings[k_prev], return_inverse=True)
        child_values, child_codes = np.unique(labelings[k], return_inverse=True)
        table = _contingency(parent_codes.ravel(), parent_values.size, child_codes.ravel(), child_values.size)
        rows, cols = np.nonzero(table)
        n_cells = table[rows, cols]
        frames.append(
            pd.DataFrame(
                {
                    "k_prev": np.full(rows.size, k_prev, dtype=np.int64),
                    "k": np.full(rows.size, k, dtype=np.int64),
                    "parent": parent_values[rows],
                    "child": child_values[cols],
                    "n_cells": n_cells.astype(np.int64),
                    "fraction_of_child": n_cells / table.sum(axis=0)[cols],
                    "fraction_of_parent": n_cells / table.sum(axis=1)[rows],
                }
            )
        )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=np.float64 if "fraction" in c else np.int64) for c in FLOW_COLUMNS})
    return pd.concat(frames, ignore_index=True)[FLOW_COLUMNS]
