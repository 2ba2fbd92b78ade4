"""Tools (``scice.tl``), after scanpy's ``sc.tl``: run scICE on an AnnData in place."""

from __future__ import annotations

import datetime
import inspect
import re
import time
from typing import Any

from ._anndata import is_anndata
from ._labels import consistent_labels, isolated_cells, label_categorical
from ._logging import logger, progress_logging
from ._params import PARAMS, doc_params

__all__ = ["scice"]

#: SCICE parameters that :func:`scice` sets itself (the graph) or names in its own signature.
_OWN = {"cluster_range", "resolution", "graph_key", "n_jobs", "random_state"}


def _method_names() -> list[str]:
    from ._estimator import SCICE

    return [name for name in inspect.signature(SCICE).parameters if name not in _OWN]


def _choose_graph(adata: Any, neighbors_key: str | None, obsp: str | None) -> str:
    """The ``adata.obsp`` key to cluster, chosen as ``sc.tl.leiden`` chooses it."""
    if obsp is not None and neighbors_key is not None:
        raise ValueError(
            "Pass only one of obsp= and neighbors_key= (as in sc.tl.leiden): obsp names the graph in "
            "adata.obsp directly, neighbors_key names the adata.uns entry of sc.pp.neighbors(key_added=...)."
        )
    if obsp is not None:
        if obsp not in adata.obsp:
            raise KeyError(f"obsp={obsp!r} is not in adata.obsp (available: {sorted(adata.obsp.keys())}).")
        return str(obsp)
    if neighbors_key is None:
        neighbors = adata.uns.get("neighbors")
        key = neighbors.get("connectivities_key", "connectivities") if isinstance(neighbors, dict) else None
        key = key or "connectivities"
        if key not in adata.obsp:
            raise KeyError(
                f"No graph adata.obsp[{key!r}] (available: {sorted(adata.obsp.keys())}). Run sc.pp.neighbors(adata) "
                "first, or pass obsp= or neighbors_key= naming the graph to cluster."
            )
        return str(key)
    neighbors = adata.uns.get(neighbors_key)
    if not isinstance(neighbors, dict) or "connectivities_key" not in neighbors:
        raise KeyError(
            f"neighbors_key={neighbors_key!r}: adata.uns[{neighbors_key!r}] is not the record of a neighbour graph "
            "(sc.pp.neighbors(adata, key_added=...) writes one with a 'connectivities_key'). Pass the key_added "
            "of sc.pp.neighbors, or obsp= naming the graph in adata.obsp."
        )
    key = str(neighbors["connectivities_key"])
    if key not in adata.obsp:
        raise KeyError(f"adata.uns[{neighbors_key!r}] names adata.obsp[{key!r}], which is missing.")
    return key


def _check_key_added(key_added: Any) -> str:
    if not isinstance(key_added, str) or not key_added:
        raise TypeError(f"key_added must be a non-empty string, got {key_added!r}.")
    return key_added


def _check_method_params(method_params: dict[str, Any]) -> None:
    if "graph_key" in method_params:
        raise TypeError("scice.tl.scice takes the graph as obsp= or neighbors_key= (as sc.tl.leiden), not graph_key=.")
    known = _method_names()
    unknown = sorted(set(method_params) - set(known))
    if unknown:
        raise TypeError(
            f"Unknown parameter(s) {unknown} for scice.tl.scice; the method parameters are those of scice.SCICE: "
            f"{known}."
        )


def _elapsed(start: float) -> str:
    return str(datetime.timedelta(seconds=round(time.perf_counter() - start)))


def _write_obs(adata: Any, results: Any, key_added: str) -> tuple[list[str], list[str], str | None]:
    """The label and consistency columns of every consistent count; stale ones of ``key_added`` removed."""
    labels = consistent_labels(results, results.ic_threshold)
    columns: dict[str, Any] = {}
    for k, ids in labels.items():
        columns[f"{key_added}_k{k}"] = label_categorical(ids)
    for k in labels:
        columns[f"{key_added}_mei_k{k}"] = results[k].mei.astype(float)
    isolated = isolated_cells(results)
    isolated_column = f"{key_added}_isolated" if labels and isolated.any() else None
    if isolated_column:
        columns[isolated_column] = isolated
    ours = re.compile(rf"{re.escape(key_added)}_(?:mei_)?k\d+|{re.escape(key_added)}_isolated")
    for stale in [c for c in adata.obs.columns if ours.fullmatch(str(c)) and c not in columns]:
        del adata.obs[stale]
    for name, values in columns.items():
        adata.obs[name] = values
    label_columns = [f"{key_added}_k{k}" for k in labels]
    mei_columns = [f"{key_added}_mei_k{k}" for k in labels]
    return label_columns, mei_columns, isolated_column


@doc_params(**PARAMS)
def scice(
    adata: Any,
    cluster_range: Any = None,
    resolution: Any = None,
    *,
    neighbors_key: str | None = None,
    obsp: str | None = None,
    key_added: str = "scICE",
    n_jobs: int = 1,
    random_state: Any = 0,
    copy: bool = False,
    **method_params: Any,
) -> Any:
    """Run scICE on the cell graph of ``adata`` and store the results and labels in it.

    The scanpy-style entry point: it fits :class:`~scice.SCICE` on the graph
    ``sc.tl.leiden`` would cluster and writes

    - ``adata.uns[key_added]``: the results as the h5ad/zarr-safe dictionary of
      :func:`scice.write_uns` (every count, its IC, labels, per-cell
      consistency, the run's ``params``);
    - ``adata.obs[f"{key_added}_k{k}"]`` for every consistent count k: the
      cluster labels (categorical, string categories ``"0"``, ``"1"``, ... in
      numeric order). Ids are aligned across the consistent counts: a cluster
      keeps the id of the cluster at the previous consistent count holding most
      of its cells (the largest child keeps its parent's id, other children get
      new ids), so colours in ``sc.pl.umap`` keep their meaning along k;
    - ``adata.obs[f"{key_added}_mei_k{k}"]``: the per-cell consistency of that
      count (float, 1 where every trial agrees on the cell), ready for
      ``sc.pl.umap(adata, color=...)``;
    - ``adata.obs[f"{key_added}_isolated"]`` (boolean) when some cells have no
      edge in the graph: Leiden cannot place them, they sit in the largest
      cluster and their consistency is NaN.

    Columns of an earlier run under the same ``key_added`` whose count is not
    consistent now are removed. Consistent means IC below ``ic_threshold``
    (1.005 unless given in ``method_params``).

    Parameters
    ----------
    adata : AnnData
        Cells with a neighbour graph (``sc.pp.neighbors``).
    {cluster_range}
    {resolution}
    neighbors_key : str, optional
        Cluster the graph of ``sc.pp.neighbors(adata, key_added=neighbors_key)``:
        ``adata.obsp[adata.uns[neighbors_key]["connectivities_key"]]``. By
        default ``adata.obsp["connectivities"]`` (or the ``connectivities_key``
        of ``adata.uns["neighbors"]``).
    obsp : str, optional
        Cluster ``adata.obsp[obsp]``. Give at most one of ``obsp`` and
        ``neighbors_key``.
    key_added : str, default="scICE"
        Key of the results in ``adata.uns`` and prefix of the ``adata.obs`` columns.
    {n_jobs}
    {random_state}
    copy : bool, default=False
        Work on a copy and return it; ``adata`` is left untouched.
    **method_params
        Any other parameter of :class:`~scice.SCICE` (``n_trials``,
        ``n_bootstrap``, ``beta``, ``ic_threshold``, ``objective_function``,
        ``min_cluster_size``, ``verbose``, ...).

    Returns
    -------
    AnnData or None
        The annotated copy when ``copy=True``, otherwise ``None``.

    Raises
    ------
    TypeError
        If ``adata`` is not an AnnData, or a method parameter is unknown.
    KeyError
        If the graph named by ``obsp`` / ``neighbors_key`` (or the default) is missing.
    ValueError
        If both ``obsp`` and ``neighbors_key`` are given, or for any invalid
        parameter of :class:`~scice.SCICE`.

    Examples
    --------
    >>> import scanpy as sc, scice
    >>> adata = sc.datasets.pbmc68k_reduced()  # doctest: +SKIP
    >>> scice.tl.scice(adata, cluster_range=(2, 10))  # doctest: +SKIP
    >>> scice.get.results_df(adata)  # doctest: +SKIP
    >>> sc.pl.umap(adata, color=["scICE_k5", "scICE_k6", "scICE_mei_k6"])  # doctest: +SKIP
    """
    from ._estimator import SCICE
    from .legacy import write_uns

    if not is_anndata(adata):
        raise TypeError(
            f"adata must be an AnnData object, got {type(adata).__name__}. For a sparse adjacency matrix use "
            "scice.SCICE(...).fit(matrix)."
        )
    key_added = _check_key_added(key_added)
    graph_key = _choose_graph(adata, neighbors_key, obsp)
    _check_method_params(method_params)
    est = SCICE(
        cluster_range=cluster_range,
        resolution=resolution,
        graph_key=graph_key,
        n_jobs=n_jobs,
        random_state=random_state,
        **method_params,
    )
    start = time.perf_counter()
    with progress_logging(bool(method_params.get("verbose", False))):
        logger.info("running scICE on adata.obsp[%r]", graph_key)
        est.fit(adata)
        if copy:
            adata = adata.copy()
        results = est.results_
        write_uns(adata, results, key_added=key_added)
        label_columns, mei_columns, isolated_column = _write_obs(adata, results, key_added)
        counts = ", ".join(c.removeprefix(f"{key_added}_k") for c in label_columns) or "none"
        added = [
            f"    {key_added!r}, the results (adata.uns)",
            f"    {', '.join(map(repr, label_columns))}, the aligned cluster labels (adata.obs, categorical)"
            if label_columns
            else "",
            f"    {', '.join(map(repr, mei_columns))}, the per-cell consistency (adata.obs)" if mei_columns else "",
            f"    {isolated_column!r}, cells without an edge (adata.obs)" if isolated_column else "",
        ]
        logger.info(
            "    finished: found %d consistent cluster counts (k = %s) (%s) and added\n%s",
            len(label_columns),
            counts,
            _elapsed(start),
            "\n".join(line for line in added if line),
        )
    return adata if copy else None
