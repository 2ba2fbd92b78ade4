"""Scanpy-style functions: the legacy one-call form and robust label extraction."""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ._anndata import check_cells_match, is_anndata, results_from
from ._estimator import SCICE
from ._labels import check_threshold, consistent_labels, isolated_cells, label_categorical
from ._params import LEGACY_PARAMS, PARAMS, doc_params, estimator_params
from ._results import SCICEResults
from ._warn import warn_from_caller
from .legacy import write_uns
from .strategies import LayoutInfo, ProcessLayout

__all__ = ["get_robust_labels", "scice_clustering", "scICE_clustering"]


def get_robust_labels(
    data: Any,
    threshold: float = 1.005,
    return_adata: bool = False,
    key: str = "scICE",
) -> pd.DataFrame | Any:
    """Cluster labels of every consistent cluster count.

    A cluster count is consistent (robust) when its IC is below ``threshold``.
    Its labels are the representative labeling ``best_labels``, with ids
    aligned across the consistent counts (:func:`~scice._align.align_labels`):
    a cluster keeps the id of the cluster at the previous consistent count that
    holds most of its cells (the largest child keeps its parent's id, the other
    children get new ids), so an id, and its colour in ``sc.pl.umap``, keeps
    its meaning from one count to the next.

    Parameters
    ----------
    data : AnnData, dict or SCICEResults
        An AnnData with results in ``adata.uns[key]`` (see :func:`scice.write_uns`
        and :func:`scice.scice_clustering`), the legacy result dictionary, or
        :class:`~scice.SCICEResults`.
    threshold : float, default=1.005
        Counts with IC strictly below it are returned.
    return_adata : bool, default=False
        If ``True``, ``data`` must be an AnnData: add one categorical column
        ``scICE_k_<k>`` per consistent count to ``adata.obs`` (in place) and return
        the AnnData. ``scICE_k_<k>`` columns of an earlier call whose count is not
        consistent now are removed, so the columns always match these results.
        Otherwise return a DataFrame.
    key : str, default="scICE"
        Key of the results in ``adata.uns``.

    Returns
    -------
    pandas.DataFrame or AnnData
        Cells x ``scICE_k_<k>`` categorical columns (categories ``"0"``, ``"1"``,
        ... in numeric order; at the smallest consistent count 0 is the largest
        cluster, and ids are aligned from there on), indexed by cell name, plus a
        boolean ``scICE_isolated`` column when some cells have no edge in the graph
        (Leiden cannot place them: they sit in the largest cluster); or the
        AnnData when ``return_adata=True``. With no consistent count a warning is
        issued and the DataFrame has no columns (the AnnData is returned unchanged).

    Raises
    ------
    ValueError
        If cell names are needed but unknown (results of a fit on a sparse matrix,
        given as a dict or SCICEResults), if ``return_adata=True`` without an
        AnnData, or if the AnnData's cells differ from the cells the results were
        computed on.
    KeyError
        If an AnnData has no results under ``key``.

    Examples
    --------
    >>> df = scice.get_robust_labels(adata, threshold=1.005)  # doctest: +SKIP
    >>> adata = scice.get_robust_labels(adata, threshold=1.005, return_adata=True)  # doctest: +SKIP
    >>> sc.pl.umap(adata, color=[c for c in adata.obs if c.startswith("scICE_k_")])  # doctest: +SKIP
    """
    threshold = check_threshold(threshold, none_means=None)
    is_adata = is_anndata(data)
    if return_adata and not is_adata:
        raise ValueError(
            f"return_adata=True adds columns to adata.obs and needs an AnnData, got {type(data).__name__}. "
            "Pass the AnnData, or use return_adata=False to get a DataFrame."
        )
    results = results_from(data, key)
    if is_adata:
        check_cells_match(data, results, "attach the labels to this AnnData")
        index = pd.Index(data.obs_names)
    elif results.cell_names is not None:
        index = pd.Index(np.asarray(results.cell_names, dtype=object))
    elif not results.clusters:
        index = pd.RangeIndex(0)
    else:
        raise ValueError(
            "Cell names are needed to label the rows but the results carry none (they come from a fit on a "
            "sparse matrix, not an AnnData). Store them in the AnnData of these cells with "
            "scice.write_uns(adata, results) and call get_robust_labels(adata), or read "
            "results[k].best_labels directly."
        )
    chosen = [c for c in results.clusters if c.ic < threshold]
    columns = {f"scICE_k_{k}": label_categorical(v) for k, v in consistent_labels(results, threshold).items()}
    isolated = isolated_cells(results)
    if chosen and isolated.any():
        columns[ISOLATED_COLUMN] = isolated
    if not chosen:
        counts = ", ".join(f"{c.n_cluster}: {c.ic:.4f}" for c in results.clusters) or "none"
        warn_from_caller(
            f"No cluster count has IC below threshold {threshold} (IC per count: {counts}); "
            "no labels returned. Raise the threshold or re-run with other cluster counts.",
            UserWarning,
        )
    if return_adata:
        ours = re.compile(rf"scICE_k_\d+|{ISOLATED_COLUMN}")
        for stale in [c for c in data.obs.columns if ours.fullmatch(str(c)) and c not in columns]:
            del data.obs[stale]
        for name, values in columns.items():
            data.obs[name] = values
        return data
    return pd.DataFrame(columns, index=index)


#: Column of :func:`get_robust_labels` marking cells without edges (their labels are the merge's guess).
ISOLATED_COLUMN = "scICE_isolated"


class _CappedProcessLayout(ProcessLayout):
    """:class:`ProcessLayout` with the legacy ``outer_workers`` / ``inner_workers`` caps.

    Parameters
    ----------
    outer_workers : int or None
        Cap on the targets / resolutions evaluated side by side.
    inner_workers : int or None
        Cap on the workers one trial set's trials are split across.
    inner_min_edges, tasks_per_worker, batch_size
        As in :class:`~scice.strategies.ProcessLayout`.
    """

    def __init__(
        self,
        outer_workers: int | None = None,
        inner_workers: int | None = None,
        inner_min_edges: int = 1_000,
        tasks_per_worker: int = 2,
        batch_size: int | str = 1,
    ):
        super().__init__(inner_min_edges=inner_min_edges, tasks_per_worker=tasks_per_worker, batch_size=batch_size)
        self.outer_workers = outer_workers
        self.inner_workers = inner_workers

    def resolve(self, n_jobs: int, n_tasks: int, n_vertices: int, n_edges: int) -> LayoutInfo:
        info = super().resolve(n_jobs, n_tasks, n_vertices, n_edges)
        outer = (
            info.outer_workers if self.outer_workers is None else max(1, min(info.outer_workers, self.outer_workers))
        )
        inner = (
            info.inner_workers if self.inner_workers is None else max(1, min(info.inner_workers, self.inner_workers))
        )
        return LayoutInfo(
            n_workers=info.n_workers, outer_workers=outer, inner_workers=inner, backend=info.backend, layout=info.layout
        )


def _check_cap(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
    return int(value)


@doc_params(**PARAMS, **LEGACY_PARAMS)
def scice_clustering(
    adata: Any,
    graph_key: str = "connectivities",
    cluster_range: Any = None,
    *,
    resolution: Any = None,
    n_workers: int = 1,
    outer_workers: int | None = None,
    inner_workers: int | None = None,
    n_trials: int = 15,
    n_bootstrap: int = 100,
    seed: Any = None,
    beta: float = 0.1,
    n_iterations: int = 10,
    max_iterations: int = 150,
    ic_threshold: float = 1.005,
    objective_function: str = "CPM",
    remove_threshold: float = 1.15,
    min_cluster_size: int = 2,
    resolution_tolerance: float = 1e-8,
    verbose: bool = False,
    copy: bool = False,
    scratch_dir: str | None = None,
    key_added: str = "scICE",
) -> Any:
    """Run scICE on ``adata`` and store the results in ``adata.uns[key_added]`` (legacy one-call form).

    Equivalent to ``scice.write_uns(adata, scice.SCICE(...).fit(adata).results_)``
    with the parameter names of the legacy ``scICEpy.scICE_clustering``: ``seed``
    is :class:`~scice.SCICE`'s ``random_state`` and ``n_workers`` its ``n_jobs``.

    Parameters
    ----------
    adata : AnnData
        Cells with a graph in ``adata.obsp[graph_key]``.
    {graph_key}
    {cluster_range}
    {resolution}
    {n_workers}
    outer_workers, inner_workers : int, optional
        Caps on the targets evaluated side by side (outer) and on the workers
        one trial set's trials are split across (inner).
    {n_trials}
    {n_bootstrap}
    {seed}
    {beta}
    {n_iterations}
    {max_iterations}
    {ic_threshold}
    {objective_function}
    {remove_threshold}
    {min_cluster_size}
    {resolution_tolerance}
    {verbose}
    copy : bool, default=False
        Work on and return a copy; ``adata`` is left untouched.
    scratch_dir : str or path, optional
        An existing folder for temporary files of worker processes (joblib's
        ``temp_folder``, where backends that memory-map large arguments, such as
        ``"multiprocessing"``, put them). scice itself writes no scratch files,
        and with the default loky pool nothing is written there.
    key_added : str, default="scICE"
        Key in ``adata.uns`` for the results.

    Returns
    -------
    AnnData or None
        The modified copy when ``copy=True``, otherwise ``None`` (``adata`` gains
        ``uns[key_added]``).

    Examples
    --------
    >>> import scanpy as sc, scice
    >>> adata = sc.datasets.pbmc68k_reduced()  # doctest: +SKIP
    >>> scice.scice_clustering(adata, cluster_range=list(range(2, 11)), seed=42)  # doctest: +SKIP
    >>> adata.uns["scICE"]["best_cluster"]  # doctest: +SKIP
    """
    if not is_anndata(adata):
        raise TypeError(
            f"adata must be an AnnData object, got {type(adata).__name__}. For a sparse adjacency matrix use "
            "scice.SCICE(...).fit(matrix)."
        )
    outer_cap = _check_cap(outer_workers, "outer_workers")
    inner_cap = _check_cap(inner_workers, "inner_workers")
    if scratch_dir is not None and not os.path.isdir(scratch_dir):
        raise ValueError(
            f"scratch_dir {str(scratch_dir)!r} is not an existing folder; create it first or leave scratch_dir=None."
        )
    layout: Any = "auto"
    if outer_cap is not None or inner_cap is not None:
        if n_workers == 1:
            warn_from_caller(
                "outer_workers/inner_workers cap a pool of worker processes, and n_workers=1 runs everything in "
                "this process (the default; the legacy tool's was 10): set n_workers, e.g. n_workers=-1 for all "
                "cores.",
                UserWarning,
            )
        else:
            layout = _CappedProcessLayout(outer_workers=outer_cap, inner_workers=inner_cap)
    forwarded = {
        "cluster_range": cluster_range,
        "resolution": resolution,
        "graph_key": graph_key,
        "objective_function": objective_function,
        "n_trials": n_trials,
        "n_bootstrap": n_bootstrap,
        "n_iterations": n_iterations,
        "max_iterations": max_iterations,
        "beta": beta,
        "ic_threshold": ic_threshold,
        "remove_threshold": remove_threshold,
        "min_cluster_size": min_cluster_size,
        "resolution_tolerance": resolution_tolerance,
        "n_workers": n_workers,
        "seed": seed,
        "verbose": verbose,
    }
    est = SCICE(layout=layout, **estimator_params(forwarded))
    config = contextlib.nullcontext()
    if scratch_dir is not None:
        config = joblib.parallel_config(temp_folder=str(scratch_dir))
    with config:
        est.fit(adata)
    results: SCICEResults = est.results_
    return write_uns(adata, results, key_added=key_added, copy=copy)


#: Legacy spelling of :func:`scice_clustering` (scICEpy's ``scICE_clustering``).
scICE_clustering = scice_clustering
