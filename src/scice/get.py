"""Getters (``scice.get``), after scanpy's ``sc.get``: tables and arguments from stored results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._anndata import check_cells_match, is_anndata, results_from
from ._labels import consistent_labels, resolve_threshold
from ._params import FRONT_PARAMS, FRONT_TEXT, doc_params
from ._warn import warn_from_caller

__all__ = ["labels", "leiden_params", "results_df"]


@doc_params(**FRONT_PARAMS, **FRONT_TEXT)
def results_df(adata: Any, key: str = "scICE", threshold: float | None = None) -> pd.DataFrame:
    """One row per returned cluster count: its resolution, IC and whether it is consistent.

    Parameters
    ----------
    {results_adata}
    {key}
    {threshold}

    Returns
    -------
    pandas.DataFrame
        Indexed by ``n_cluster``, columns ``gamma``, ``ic`` (median bootstrap
        IC), ``ic_q05``, ``ic_q95`` (bootstrap quantiles), ``trial_ic``,
        ``n_partitions`` (distinct partitions among the trials), ``n_iter``,
        ``source_target_cluster`` and ``consistent``
        (:meth:`SCICEResults.to_frame <scice.SCICEResults.to_frame>`).
    """
    results = results_from(adata, key)
    frame = results.to_frame()
    frame["consistent"] = frame["ic"].to_numpy() < resolve_threshold(threshold, results)
    return frame


@doc_params(**FRONT_PARAMS, **FRONT_TEXT)
def labels(adata: Any, key: str = "scICE", threshold: float | None = None) -> pd.DataFrame:
    """The cluster labels of every consistent count, ids aligned across counts.

    Parameters
    ----------
    {results_adata}
    {key}
    {threshold}

    Returns
    -------
    pandas.DataFrame
        Cells x consistent counts: one int64 column per count, named by the
        count (``df[5]``), holding the aligned cluster ids (the categories of
        ``obs[f"{key}_k{k}"]`` written by :func:`scice.tl.scice`). Indexed by
        ``adata.obs_names`` (or the stored cell names; 0..n-1 without them).
        No columns when no count is consistent.
    """
    results = results_from(adata, key)
    if is_anndata(adata):
        check_cells_match(adata, results, "label this AnnData's cells")
        index: pd.Index = pd.Index(adata.obs_names)
    elif results.cell_names is not None:
        index = pd.Index(np.asarray(results.cell_names, dtype=object))
    else:
        index = pd.RangeIndex(results.clusters[0].best_labels.size if results.clusters else 0)
    aligned = consistent_labels(results, resolve_threshold(threshold, results))
    frame = pd.DataFrame({k: v for k, v in aligned.items()}, index=index)
    frame.columns.name = "n_cluster"
    return frame


@doc_params(**FRONT_PARAMS, **FRONT_TEXT)
def leiden_params(
    adata: Any,
    k: int,
    key: str = "scICE",
    *,
    scanpy_version: str | None = None,
    preset: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``sc.tl.leiden`` that reproduce the scice partition at ``k`` clusters.

    ``sc.tl.leiden(adata, **scice.get.leiden_params(adata, k))`` runs igraph's
    Leiden with scice's objective, ``beta`` and iterations on the same graph,
    at the resolution that means the same on the graph scanpy builds: scanpy up
    to 1.13 (default preset) stores every edge twice, so a CPM resolution is
    doubled; with scanpy 1.13's ``"scanpy-v2-preview"`` preset (and scanpy 2)
    it passes unchanged, as does a modularity resolution. At a consistent count
    every seed gives the same partition, so the labels match scice's up to the
    ids (and a few cells of clusters below ``min_cluster_size``, which scice
    merges). Add ``key_added=`` as usual.

    Parameters
    ----------
    {results_adata}
    k : int
        A returned cluster count (``scice.get.results_df(adata).index``).
    {key}
    scanpy_version : str, optional
        The scanpy that will run ``sc.tl.leiden``; default: the installed one.
    preset : str, optional
        Its ``scanpy.settings.preset``; default: the installed scanpy's current
        preset when ``scanpy_version`` is not given, else ``"scanpy-v1"``.

    Returns
    -------
    dict
        ``flavor="igraph"``, ``objective_function``, ``resolution``, ``beta``,
        ``n_iterations``, ``directed=False``, ``use_weights=True``, ``obsp``
        and a seed (``random_state``, or ``rng`` from scanpy 1.13 on).

    Raises
    ------
    KeyError
        If there is no result with ``k`` clusters.

    Warns
    -----
    UserWarning
        If ``k`` is not consistent: ``sc.tl.leiden`` with one seed may then
        give another partition than scice's representative one.

    Examples
    --------
    >>> scice.tl.scice(adata, cluster_range=(2, 10), key_added="sc")  # doctest: +SKIP
    >>> sc.tl.leiden(adata, key_added="leiden_k6", **scice.get.leiden_params(adata, 6, key="sc"))  # doctest: +SKIP
    """
    from ._handoff import leiden_params as _leiden_params

    results = results_from(adata, key)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer cluster count, got {k!r}.")
    result = results[int(k)]
    if not result.ic < results.ic_threshold:
        warn_from_caller(
            f"k={int(k)} is not consistent (IC {result.ic:.4f} >= {results.ic_threshold:g}): Leiden runs with "
            "different seeds disagree there, so sc.tl.leiden may give another partition than scice's.",
            UserWarning,
        )
    return _leiden_params(result, results.params, scanpy_version, preset=preset)
