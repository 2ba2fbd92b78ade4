"""The legacy ``adata.uns["scICE"]`` dictionary: h5ad/zarr-safe, lossless.

:func:`to_legacy_dict` turns a :class:`~scice.SCICEResults` into the nested
dictionary the legacy scICEpy tool stored in ``adata.uns["scICE"]`` (every key its
user documentation names, with the same meaning), encoded so that
``AnnData.write_h5ad`` / ``write_zarr`` can store it and reading it back gives the
same results. :func:`from_legacy_dict` decodes it again, exactly:
``from_legacy_dict(to_legacy_dict(r)) == r``, also after a trip through a file.

Layout of the dictionary
------------------------
Per-result fields are aligned arrays, one entry per returned final cluster count
(ascending ``n_cluster``):

``n_cluster``, ``source_target_cluster`` (``-1`` in manual mode), ``gamma``, ``ic``,
``trial_ic``, ``n_iter``
    1-d arrays of length ``n_results``.
``best_labels``, ``mei``
    2-d arrays ``(n_results, n_cells)``; ``best_labels`` in the smallest signed
    integer type that holds every label.
``ic_vec``, ``labels``, ``frequencies``
    Ragged collections, each a dict ``{"values": ..., "offsets": ...}``: the entries
    of result ``i`` are ``values[offsets[i]:offsets[i + 1]]``. ``ic_vec`` holds the
    bootstrap ICs; ``labels`` holds the unique partitions among the trials, stacked
    as rows of a 2-d ``(sum U_i, n_cells)`` array; ``frequencies`` the number of
    trials behind each of those rows. Use :func:`ragged_get` to slice one out.

Summary fields: ``analysis_mode``, ``consistent_clusters``, ``best_cluster``
(``-1`` when there is no result), ``best_resolution`` (NaN when there is no
result), ``coverage_complete``, ``search_coverage_complete``,
``cluster_range_tested`` (mirrors ``n_cluster``), ``uncovered_targets`` (int array)
with ``uncovered_target_reasons`` (aligned strings), ``requested_cluster_range``
and ``resolution_input`` (empty arrays when not applicable), ``ic_threshold``,
``cell_names`` (empty when unknown), ``graph_key``, ``min_cluster_size``,
``beta``, ``objective_function``, ``beta_supported``, ``beta_applied``,
``beta_support_reason``, the four diagnostics DataFrames, ``parallel_layout``,
``params`` and ``timings``.

Bookkeeping: ``format_version`` and ``encoding``, a JSON string with what
:func:`from_legacy_dict` needs to restore ``None`` values, original dtypes, dict
key order and DataFrame column types (one string rather than a tree of small
arrays: zarr writes every array as its own node). Only string keys, numpy arrays, numpy scalars, strings,
nested dicts and DataFrames are used: no ``None``, tuples, lists or integer keys.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _codec as codec
from ._anndata import check_cells_match, coerce_results, is_anndata
from ._codec import ragged_get
from ._results import ClusterResult, SCICEResults
from ._similarity import smallest_int_dtype
from .exceptions import NewerFormatError, NotSciceResultsError

__all__ = [
    "to_legacy_dict",
    "from_legacy_dict",
    "write_uns",
    "ragged_get",
    "FORMAT_VERSION",
    "NotSciceResultsError",
    "NewerFormatError",
]

#: Version of the dictionary layout written by :func:`to_legacy_dict`.
FORMAT_VERSION = 1


BETA_SUPPORT_REASON = (
    "scice runs Leiden with igraph's Graph.community_leiden, which applies beta (the randomness "
    "of the refinement step); the legacy leidenalg backend accepted beta but ignored it."
)

_CLUSTER_ARRAYS = ("ic_vec", "best_labels", "labelings", "frequencies", "mei")
_PER_RESULT = ("source_target_cluster", "gamma", "ic", "trial_ic", "n_iter")
_DATAFRAMES = (
    "target_diagnostics",
    "resolution_search_diagnostics",
    "optimization_diagnostics",
    "resolution_diagnostics",
)
_OPTIONAL_ARRAYS = ("requested_cluster_range", "resolution_input", "cell_names")
_MAPPINGS = ("parallel_layout", "params", "timings")
_REQUIRED_KEYS = ("analysis_mode", "n_cluster", *_PER_RESULT, "ic_vec", "best_labels", "labels", "frequencies", "mei")
_REQUIRED_KEYS += ("ic_threshold", "search_coverage_complete", "uncovered_targets", "uncovered_target_reasons")
_REQUIRED_KEYS += (*_OPTIONAL_ARRAYS, *_DATAFRAMES, *_MAPPINGS, "encoding")


# ---------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------
def to_legacy_dict(results: SCICEResults) -> dict[str, Any]:
    """Encode results as the legacy ``adata.uns["scICE"]`` dictionary.

    The dictionary carries every key of the legacy scICEpy result (``analysis_mode``,
    ``n_cluster``, ``gamma``, ``ic``, ``ic_vec``, ``best_labels``, ``labels``, ``mei``,
    ``consistent_clusters``, ``best_cluster``, the diagnostics tables, ...) plus what
    is needed to rebuild the results exactly. It contains only string keys, numpy
    arrays and scalars, strings, nested dicts and DataFrames, so it can be written
    with ``AnnData.write_h5ad`` and ``AnnData.write_zarr``. See the module
    documentation for the layout (ragged fields are ``{"values", "offsets"}``).

    Parameters
    ----------
    results : SCICEResults
        Results of a fit (``SCICE().fit(...).results_``). A fitted ``SCICE``
        estimator is accepted too.

    Returns
    -------
    dict
        The encoded results; :func:`from_legacy_dict` decodes it.

    Raises
    ------
    TypeError
        If ``results`` is not a ``SCICEResults`` (or holds values that cannot be
        stored, e.g. a custom object in ``params``).
    ValueError
        If the per-cell arrays of the results do not all have the same length.

    Examples
    --------
    >>> d = to_legacy_dict(est.results_)  # doctest: +SKIP
    >>> d["n_cluster"], d["ic"]  # doctest: +SKIP
    >>> from_legacy_dict(d) == est.results_  # doctest: +SKIP
    True
    """
    results = coerce_results(results)
    n_cells = _n_cells(results)
    out: dict[str, Any] = {
        "format_version": np.int64(FORMAT_VERSION),
        "analysis_mode": str(results.analysis_mode),
        **_per_result_fields(results.clusters, n_cells),
        **_summary_fields(results),
        **_method_fields(results.params),
    }
    if results.cell_names is not None and np.asarray(results.cell_names).dtype.kind not in "OUT":
        raise TypeError(f"cell_names must be strings, got dtype {np.asarray(results.cell_names).dtype}.")
    encoding = _encoding(results, n_cells)
    for name in _DATAFRAMES:
        out[name], encoding["dataframes"][name] = codec.encode_frame(getattr(results, name), name)
    for name in _MAPPINGS:
        out[name], encoding["mappings"][name] = codec.encode_mapping(getattr(results, name), name)
    out["encoding"] = json.dumps(encoding, separators=(",", ":"))
    return out


def _n_cells(results: SCICEResults) -> int:
    """The number of cells every per-cell array describes; raise if they disagree or have other shapes."""
    clusters = results.clusters
    lengths = {c.best_labels.shape[0] for c in clusters} | {c.mei.shape[0] for c in clusters}
    lengths |= {c.labelings.shape[1] for c in clusters if c.labelings.ndim == 2}
    if results.cell_names is not None and clusters:
        lengths.add(len(results.cell_names))
    if len(lengths) > 1:
        raise ValueError(
            f"The per-cell arrays of the results have different lengths {sorted(lengths)}; "
            "all results of one fit must describe the same cells."
        )
    if clusters:
        n_cells = lengths.pop()
    else:
        n_cells = 0 if results.cell_names is None else len(results.cell_names)
    for c in clusters:
        if c.labelings.ndim != 2 or c.best_labels.ndim != 1 or c.ic_vec.ndim != 1 or c.frequencies.ndim != 1:
            raise ValueError(
                f"Result {c.n_cluster}: expected 1-d best_labels/ic_vec/frequencies and 2-d labelings, got "
                f"{c.best_labels.ndim}/{c.ic_vec.ndim}/{c.frequencies.ndim} and {c.labelings.ndim}."
            )
    return n_cells


def _label_dtype(arrays: Sequence[np.ndarray]) -> np.dtype:
    """Smallest signed integer dtype holding every value of ``arrays`` (int8 if there are none)."""
    lo = min((int(a.min()) for a in arrays if a.size), default=0)
    hi = max((int(a.max()) for a in arrays if a.size), default=0)
    return smallest_int_dtype(max(hi, 0), min_value=min(lo, 0))


def _per_result_fields(clusters: Sequence[ClusterResult], n_cells: int) -> dict[str, Any]:
    """The arrays with one entry (or row, or ragged part) per result, in the legacy key order."""
    best_labels = np.zeros((len(clusters), n_cells), dtype=_label_dtype([c.best_labels for c in clusters]))
    labels_dtype = _label_dtype([c.labelings for c in clusters])
    mei = np.zeros((len(clusters), n_cells), dtype=np.float64)
    for i, c in enumerate(clusters):
        best_labels[i] = c.best_labels
        mei[i] = c.mei
    return {
        "n_cluster": np.array([c.n_cluster for c in clusters], dtype=np.int64),
        "source_target_cluster": np.array([c.source_target_cluster for c in clusters], dtype=np.int64),
        "gamma": np.array([c.gamma for c in clusters], dtype=np.float64),
        "ic": np.array([c.ic for c in clusters], dtype=np.float64),
        "trial_ic": np.array([c.trial_ic for c in clusters], dtype=np.float64),
        "n_iter": np.array([c.n_iter for c in clusters], dtype=np.int64),
        "ic_vec": codec.encode_ragged([c.ic_vec for c in clusters], np.dtype(np.float64)),
        "best_labels": best_labels,
        "labels": codec.encode_ragged([c.labelings for c in clusters], labels_dtype, (n_cells,)),
        "frequencies": codec.encode_ragged([c.frequencies for c in clusters], np.dtype(np.int64)),
        "mei": mei,
    }


def _summary_fields(results: SCICEResults) -> dict[str, Any]:
    """What the legacy tool summarised about the whole run, in its key order."""
    uncovered = results.uncovered_targets
    for key in uncovered:
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"uncovered_targets keys must be integer cluster counts, got {key!r}.")
    best = results.best
    return {
        "ic_threshold": np.float64(results.ic_threshold),
        "consistent_clusters": np.asarray(results.consistent_clusters, dtype=np.int64),
        "best_cluster": np.int64(-1 if best is None else best.n_cluster),
        "best_resolution": np.float64(np.nan if best is None else best.gamma),
        "coverage_complete": np.bool_(results.coverage_complete),
        "search_coverage_complete": np.bool_(results.search_coverage_complete),
        "cluster_range_tested": np.array([c.n_cluster for c in results.clusters], dtype=np.int64),
        "uncovered_targets": np.array([int(k) for k in uncovered], dtype=np.int64),
        "uncovered_target_reasons": codec.str_array(uncovered.values()),
        "requested_cluster_range": _array_or_empty(results.requested_cluster_range, np.int64),
        "resolution_input": _array_or_empty(results.resolution_input, np.float64),
        "cell_names": codec.str_array([] if results.cell_names is None else results.cell_names),
    }


def _array_or_empty(value: Any, empty_dtype: type[np.generic]) -> np.ndarray:
    return np.empty(0, dtype=empty_dtype) if value is None else np.array(value)


def _method_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The legacy top-level copies of method parameters."""
    params = dict(params)
    return {
        "graph_key": str(params.get("graph_key", "")),
        "objective_function": str(params.get("objective_function", "")),
        "min_cluster_size": np.int64(params.get("min_cluster_size", -1)),
        "beta": np.float64(params["beta"]) if params.get("beta") is not None else np.float64(np.nan),
        "beta_supported": np.bool_(True),
        "beta_applied": np.bool_(True),
        "beta_support_reason": BETA_SUPPORT_REASON,
    }


def _encoding(results: SCICEResults, n_cells: int) -> dict[str, Any]:
    """The ``encoding`` entry, less the specs of the mappings and DataFrames (filled in by the caller)."""
    clusters = results.clusters
    return {
        "present": {name: getattr(results, name) is not None for name in _OPTIONAL_ARRAYS},
        "array_dtypes": {
            name: str(np.asarray(getattr(results, name)).dtype.str)
            for name in _OPTIONAL_ARRAYS
            if getattr(results, name) is not None
        },
        "cluster_dtypes": {name: [getattr(c, name).dtype.str for c in clusters] for name in _CLUSTER_ARRAYS},
        "labels_n_cells": int(n_cells),
        "mappings": {},
        "dataframes": {},
        "uncovered_keys": [
            f"np:{k.dtype.str}" if isinstance(k, np.generic) else "int" for k in results.uncovered_targets
        ],
        "ic_threshold_type": type(results.ic_threshold).__name__,
        "search_coverage_complete_type": type(results.search_coverage_complete).__name__,
    }


# ---------------------------------------------------------------------------
# decode
# ---------------------------------------------------------------------------
def from_legacy_dict(d: Mapping[str, Any]) -> SCICEResults:
    """Decode a dictionary written by :func:`to_legacy_dict` back into results.

    Works on the dictionary itself and on what ``anndata.read_h5ad`` /
    ``read_zarr`` return for it (``adata.uns["scICE"]``): strings, dtypes, ``None``
    values, dict key order and DataFrame column types are restored, so
    ``from_legacy_dict(to_legacy_dict(r)) == r``.

    Parameters
    ----------
    d : dict
        The encoded results, e.g. ``adata.uns["scICE"]``.

    Returns
    -------
    SCICEResults

    Raises
    ------
    ValueError
        If ``d`` was not written by scice (no ``format_version``), was written by a
        newer scice, or is incomplete.
    TypeError
        If ``d`` is not a dictionary.
    """
    enc = _read_encoding(d)
    clusters = _decode_clusters(d, enc)
    optional = _decode_optional_arrays(d, enc)
    uncovered = _decode_uncovered(d, enc)
    threshold = np.asarray(d["ic_threshold"]).item()
    coverage = np.asarray(d["search_coverage_complete"]).item()
    return SCICEResults(
        clusters=clusters,
        analysis_mode=str(d["analysis_mode"]),
        ic_threshold=float(threshold) if enc.get("ic_threshold_type", "float") == "float" else threshold,
        requested_cluster_range=optional["requested_cluster_range"],
        resolution_input=optional["resolution_input"],
        uncovered_targets=uncovered,
        search_coverage_complete=bool(coverage)
        if enc.get("search_coverage_complete_type", "bool") == "bool"
        else np.bool_(coverage),
        **{name: codec.decode_frame(d[name], enc["dataframes"][name], name) for name in _DATAFRAMES},
        **{name: codec.decode_mapping(d[name], enc["mappings"][name], name) for name in _MAPPINGS},
        cell_names=optional["cell_names"],
    )


def _read_encoding(d: Any) -> dict[str, Any]:
    """Check that ``d`` is a complete dictionary of a format this scice reads; its parsed ``encoding``."""
    if not isinstance(d, Mapping):
        raise TypeError(f"Expected the scICE result dictionary (a dict), got {type(d).__name__}.")
    if "format_version" not in d:
        raise NotSciceResultsError(
            "This dictionary was not written by scice (it has no 'format_version' key). Results of the legacy "
            "scICEpy tool cannot be decoded; re-run scice.scice_clustering(adata, ...) or "
            "scice.write_uns(adata, est.results_)."
        )
    version = int(np.asarray(d["format_version"]).item())
    if version > FORMAT_VERSION:
        raise NewerFormatError(
            f"The scICE results use format version {version}, but this scice reads up to version "
            f"{FORMAT_VERSION}; upgrade scice (pip install -U scice).",
            version,
        )
    missing = [k for k in _REQUIRED_KEYS if k not in d]
    if missing:
        raise ValueError(f"The scICE result dictionary is incomplete; missing keys: {missing}.")
    try:
        return json.loads(str(d["encoding"]))
    except (TypeError, ValueError) as err:
        raise ValueError("The 'encoding' entry of the scICE result dictionary is not valid JSON.") from err


def _decode_clusters(d: Mapping[str, Any], enc: Mapping[str, Any]) -> tuple[ClusterResult, ...]:
    """One :class:`ClusterResult` per entry of ``n_cluster``, with its original dtypes."""
    n_cluster = np.asarray(d["n_cluster"], dtype=np.int64)
    n = n_cluster.shape[0]
    per_result = {name: np.asarray(d[name]).reshape(-1) for name in _PER_RESULT}
    for name, arr in per_result.items():
        if arr.shape[0] != n:
            raise ValueError(f"{name!r} has {arr.shape[0]} entries but there are {n} results (n_cluster).")
    best_labels = np.asarray(d["best_labels"])
    mei = np.asarray(d["mei"])
    if best_labels.shape[0] != n or mei.shape[0] != n:
        raise ValueError(f"'best_labels'/'mei' need one row per result ({n}), got {best_labels.shape}/{mei.shape}.")
    ic_vec = codec.decode_ragged(d["ic_vec"], "ic_vec", n)
    labelings = codec.decode_ragged(d["labels"], "labels", n)
    frequencies = codec.decode_ragged(d["frequencies"], "frequencies", n)
    cdt = {name: codec.read_str_array(enc["cluster_dtypes"][name]) for name in _CLUSTER_ARRAYS}
    return tuple(
        ClusterResult(
            n_cluster=int(n_cluster[i]),
            gamma=float(per_result["gamma"][i]),
            ic=float(per_result["ic"][i]),
            ic_vec=np.array(ic_vec[i], dtype=cdt["ic_vec"][i]),
            best_labels=np.array(best_labels[i], dtype=cdt["best_labels"][i]),
            labelings=np.array(labelings[i], dtype=cdt["labelings"][i]),
            frequencies=np.array(frequencies[i], dtype=cdt["frequencies"][i]),
            mei=np.array(mei[i], dtype=cdt["mei"][i]),
            n_iter=int(per_result["n_iter"][i]),
            source_target_cluster=int(per_result["source_target_cluster"][i]),
            trial_ic=float(per_result["trial_ic"][i]),
        )
        for i in range(n)
    )


def _decode_optional_arrays(d: Mapping[str, Any], enc: Mapping[str, Any]) -> dict[str, Any]:
    """``requested_cluster_range``, ``resolution_input`` and ``cell_names``: ``None`` or their original array."""
    present = {name: bool(np.asarray(enc["present"][name]).item()) for name in _OPTIONAL_ARRAYS}
    dtypes = enc.get("array_dtypes", {})
    return {name: codec.decode_array(d[name], dtypes[name]) if present[name] else None for name in _OPTIONAL_ARRAYS}


def _decode_uncovered(d: Mapping[str, Any], enc: Mapping[str, Any]) -> dict[Any, str]:
    """``uncovered_targets``: target -> reason, with the keys' original integer types."""
    key_types = codec.read_str_array(enc["uncovered_keys"])
    targets = np.asarray(d["uncovered_targets"], dtype=np.int64).tolist()
    reasons = codec.read_str_array(d["uncovered_target_reasons"])
    if len(targets) != len(reasons):
        raise ValueError("'uncovered_targets' and 'uncovered_target_reasons' must have the same length.")
    return {
        (np.dtype(t[3:]).type(k) if t.startswith("np:") else int(k)): r
        for k, r, t in zip(targets, reasons, key_types, strict=False)
    }


# ---------------------------------------------------------------------------
# AnnData
# ---------------------------------------------------------------------------
def write_uns(adata: Any, results: Any, key_added: str = "scICE", copy: bool = False) -> Any:
    """Store results in ``adata.uns[key_added]`` as the legacy, h5ad-safe dictionary.

    Parameters
    ----------
    adata : AnnData
        The AnnData object the results were computed on (cell names and order are
        checked when the results carry them).
    results : SCICEResults or SCICE
        The results (``est.results_``) or a fitted ``SCICE`` estimator.
    key_added : str, default="scICE"
        Key in ``adata.uns``.
    copy : bool, default=False
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    AnnData or None
        The modified copy if ``copy=True``, otherwise ``None``.

    Raises
    ------
    ValueError
        If the results belong to other cells than ``adata.obs_names``.

    Examples
    --------
    >>> est = scice.SCICE(cluster_range=(2, 10), random_state=0).fit(adata)  # doctest: +SKIP
    >>> scice.write_uns(adata, est.results_)  # doctest: +SKIP
    >>> adata.write_h5ad("pbmc_scice.h5ad")  # doctest: +SKIP
    """
    if not is_anndata(adata):
        raise TypeError(f"adata must be an AnnData object, got {type(adata).__name__}.")
    if not isinstance(key_added, str) or not key_added:
        raise TypeError(f"key_added must be a non-empty string, got {key_added!r}.")
    results = coerce_results(results)
    check_cells_match(adata, results, f"write the results into adata.uns[{key_added!r}]")
    encoded = to_legacy_dict(results)
    if copy:
        adata = adata.copy()
    adata.uns[key_added] = encoded
    return adata if copy else None
