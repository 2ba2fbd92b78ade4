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
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._results import ClusterResult, SCICEResults
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
_DATAFRAMES = (
    "target_diagnostics",
    "resolution_search_diagnostics",
    "optimization_diagnostics",
    "resolution_diagnostics",
)
_OPTIONAL_ARRAYS = ("requested_cluster_range", "resolution_input", "cell_names")
_MAPPINGS = ("parallel_layout", "params", "timings")


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def _smallest_int_dtype(*arrays: np.ndarray) -> np.dtype:
    """Smallest signed integer dtype holding every value of ``arrays`` (int8 if empty)."""
    lo, hi = 0, 0
    for a in arrays:
        if a.size:
            lo, hi = min(lo, int(a.min())), max(hi, int(a.max()))
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"Labels outside the int64 range ({lo}..{hi}) cannot be stored.")


def _str_array(values: Any) -> np.ndarray:
    """1-d object array of Python ``str`` (what h5ad and zarr store as strings)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = str(v)
    return out


def _read_str_array(values: Any) -> list[str]:
    """Strings back from h5ad (object), zarr (``StringDType``) or memory."""
    return [str(v) for v in np.asarray(values, dtype=object).ravel().tolist()]


def _ragged(parts: list[np.ndarray], dtype: np.dtype, row_shape: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    if parts:
        offsets[1:] = np.cumsum([p.shape[0] for p in parts])
        values = np.concatenate([np.asarray(p, dtype=dtype) for p in parts], axis=0)
    else:
        values = np.empty((0, *row_shape), dtype=dtype)
    return {"values": values, "offsets": offsets}


def ragged_get(entry: Mapping[str, Any], i: int) -> np.ndarray:
    """Entries of result ``i`` of a ragged field (``ic_vec``, ``labels``, ``frequencies``).

    Parameters
    ----------
    entry : dict
        A ragged field of the legacy dictionary, e.g. ``adata.uns["scICE"]["ic_vec"]``,
        with ``values`` and ``offsets``.
    i : int
        Position of the result (aligned with ``n_cluster``).

    Returns
    -------
    numpy.ndarray
        ``values[offsets[i]:offsets[i + 1]]``.

    Examples
    --------
    >>> d = {"values": np.array([1.0, 1.1, 1.2]), "offsets": np.array([0, 1, 3])}
    >>> ragged_get(d, 1)
    array([1.1, 1.2])
    """
    offsets = np.asarray(entry["offsets"], dtype=np.int64)
    if not -len(offsets) + 1 <= i < len(offsets) - 1:
        raise IndexError(f"Result index {i} out of range for {len(offsets) - 1} results.")
    i = i % (len(offsets) - 1)
    return np.asarray(entry["values"])[offsets[i] : offsets[i + 1]]


# ---------------------------------------------------------------------------
# scalars and mappings (params, timings, parallel_layout)
# ---------------------------------------------------------------------------
def _encode_value(value: Any, where: str) -> tuple[Any, Any]:
    """Return ``(stored, tag)``; ``stored`` is ``_MISSING`` for ``None``."""
    if value is None:
        return _MISSING, "none"
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value), "bool" if isinstance(value, bool) else "np:bool"
    if isinstance(value, np.generic):
        return np.asarray(value).reshape(1), f"np:{value.dtype.str}"
    if isinstance(value, numbers.Integral):
        return np.int64(value), "int"
    if isinstance(value, numbers.Real):
        return np.float64(value), "float"
    if isinstance(value, str):
        return value, "str"
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUT":
            return _str_array(value.ravel()), f"strarray:{value.dtype.str}:{json.dumps(value.shape)}"
        return np.array(value), "ndarray"
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            raise TypeError(f"{where}: cannot store the mixed or nested sequence {value!r}; use scalars of one type.")
        stored = _str_array(arr.ravel()) if arr.dtype.kind in "UT" else arr
        kind = "str" if arr.dtype.kind in "UT" else "num"
        return stored, f"{type(value).__name__}:{kind}:{json.dumps(arr.shape)}"
    if isinstance(value, Mapping):
        return _encode_mapping(value, where)
    raise TypeError(
        f"{where}: values of type {type(value).__name__} cannot be stored in adata.uns; "
        "use None, bool, int, float, str, numpy arrays or dicts of these."
    )


class _Missing:
    """Marker for a ``None`` value that is left out of the stored dict."""


_MISSING = _Missing()


def _encode_mapping(mapping: Mapping[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    stored: dict[str, Any] = {}
    keys, tags, children = [], [], {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: key {key!r} is not a string; adata.uns only stores string keys.")
        v, tag = _encode_value(value, f"{where}[{key!r}]")
        keys.append(key)
        if isinstance(tag, dict):
            children[key] = tag
            tag = "dict"
        tags.append(tag)
        if v is not _MISSING:
            stored[key] = v
    spec = {"keys": keys, "tags": tags, "children": children}
    return stored, spec


def _decode_value(stored: Any, tag: str, spec: Mapping[str, Any] | None, where: str) -> Any:
    if tag == "none":
        return None
    if tag == "bool":
        return bool(np.asarray(stored).item())
    if tag == "np:bool":
        return np.bool_(np.asarray(stored).item())
    if tag.startswith("np:"):
        return np.asarray(stored, dtype=np.dtype(tag[3:])).reshape(())[()]
    if tag == "int":
        return int(np.asarray(stored).item())
    if tag == "float":
        return float(np.asarray(stored).item())
    if tag == "str":
        return str(stored)
    if tag == "ndarray":
        return np.array(stored)
    if tag.startswith("strarray:"):
        _, dtype, shape = tag.split(":", 2)
        values = _read_str_array(stored)
        return np.array(values, dtype=np.dtype(dtype) if dtype != "|O" else object).reshape(json.loads(shape))
    if tag.startswith(("list:", "tuple:")):
        container, kind, shape = tag.split(":", 2)
        arr = np.array(_read_str_array(stored)) if kind == "str" else np.asarray(stored)
        values = arr.reshape(json.loads(shape)).tolist()
        return tuple(values) if container == "tuple" else values
    if tag == "dict":
        return _decode_mapping(stored, spec, where)
    raise ValueError(f"{where}: unknown stored type tag {tag!r}; was this written by a newer scice?")


def _decode_mapping(stored: Mapping[str, Any], spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    keys = _read_str_array(spec["keys"])
    tags = _read_str_array(spec["tags"])
    children = spec.get("children", {}) or {}
    out = {}
    for key, tag in zip(keys, tags, strict=False):
        if tag != "none" and key not in stored:
            raise ValueError(f"{where}: key {key!r} is missing from the stored dictionary.")
        out[key] = _decode_value(stored.get(key), tag, children.get(key), f"{where}[{key!r}]")
    return out


# ---------------------------------------------------------------------------
# DataFrames
# ---------------------------------------------------------------------------
def _json_cell(value: Any, where: str) -> str:
    if value is None or value is pd.NA:
        return "null"
    if isinstance(value, np.generic):
        value = value.item()
    try:
        return json.dumps(value)
    except TypeError as err:
        raise TypeError(f"{where}: cannot store value {value!r} of type {type(value).__name__}.") from err


def _encode_frame(df: pd.DataFrame, where: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A copy anndata stores faithfully, and what is needed to undo the changes."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{where} must be a pandas DataFrame, got {type(df).__name__}.")
    for c in df.columns:
        if not isinstance(c, str):
            raise TypeError(f"{where}: column name {c!r} is not a string; adata.uns only stores string column names.")
    if df.columns.has_duplicates:
        raise ValueError(f"{where}: duplicated column names {df.columns[df.columns.duplicated()].tolist()}.")
    out = {}
    json_columns = []
    for c in df.columns:
        col = df[c]
        if col.dtype == object:
            values = col.to_numpy()
            if all(type(v) is str for v in values):
                out[c] = _str_array(values)
                continue
        elif not isinstance(col.dtype, pd.StringDtype):
            out[c] = col.to_numpy(copy=True) if not isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col
            continue
        json_columns.append(c)
        out[c] = _str_array([_json_cell(v, f"{where}[{c!r}]") for v in col.to_numpy(dtype=object)])
    index = df.index
    range_index = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    stored = pd.DataFrame(out, columns=list(df.columns), index=pd.RangeIndex(len(df)) if range_index else index)
    spec = {
        "columns": list(df.columns),
        "dtypes": [str(t) for t in df.dtypes],
        "json_columns": json_columns,
        "range_index": bool(range_index),
        "index_dtype": str(index.dtype),
    }
    return stored, spec


def _decode_frame(stored: Any, spec: Mapping[str, Any], where: str) -> pd.DataFrame:
    if not isinstance(stored, pd.DataFrame):
        raise TypeError(f"{where} should be a DataFrame, got {type(stored).__name__}.")
    columns = _read_str_array(spec["columns"])
    dtypes = dict(zip(columns, _read_str_array(spec["dtypes"]), strict=False))
    json_columns = set(_read_str_array(spec["json_columns"]))
    if list(stored.columns) != columns:
        missing = sorted(set(columns) - set(stored.columns))
        if missing:
            raise ValueError(f"{where} lacks the columns {missing}.")
    data = {}
    for c in columns:
        col = stored[c]
        if c in json_columns:
            values = np.empty(len(col), dtype=object)
            values[:] = [json.loads(v) for v in _read_str_array(col.to_numpy(dtype=object))]
            col = pd.Series(values, dtype=object)
        elif dtypes[c] == "object":
            col = pd.Series(np.array(_read_str_array(col.to_numpy(dtype=object)), dtype=object), dtype=object)
        if str(col.dtype) != dtypes[c]:
            col = col.astype(dtypes[c])
        data[c] = col.reset_index(drop=True)
    n = len(stored)
    frame = pd.DataFrame(data, columns=columns, index=pd.RangeIndex(n))
    if not bool(np.asarray(spec["range_index"]).item()):
        index = stored.index
        if str(index.dtype) != spec["index_dtype"]:
            index = index.astype(str(spec["index_dtype"]))
        frame.index = index
    return frame


# ---------------------------------------------------------------------------
# public: encode
# ---------------------------------------------------------------------------
def _coerce_results(results: Any, what: str = "results") -> SCICEResults:
    if isinstance(results, SCICEResults):
        return results
    fitted = getattr(results, "results_", None)
    if isinstance(fitted, SCICEResults):
        return fitted
    if isinstance(results, Mapping):
        return from_legacy_dict(results)
    if hasattr(results, "get_params") and not hasattr(results, "results_"):
        raise ValueError(f"{what}: the SCICE estimator is not fitted yet; call .fit(adata) first.")
    raise TypeError(
        f"{what} must be a SCICEResults, a fitted SCICE estimator or a legacy scICE dict, got {type(results).__name__}."
    )


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
    results = _coerce_results(results)
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

    best_labels_dtype = _smallest_int_dtype(*(c.best_labels for c in clusters))
    labels_dtype = _smallest_int_dtype(*(c.labelings for c in clusters))
    best_labels = np.zeros((len(clusters), n_cells), dtype=best_labels_dtype)
    mei = np.zeros((len(clusters), n_cells), dtype=np.float64)
    for i, c in enumerate(clusters):
        best_labels[i] = c.best_labels
        mei[i] = c.mei
    n_cluster = np.array([c.n_cluster for c in clusters], dtype=np.int64)

    params = dict(results.params)
    uncovered = results.uncovered_targets
    for key in uncovered:
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"uncovered_targets keys must be integer cluster counts, got {key!r}.")
    best = results.best

    encoding: dict[str, Any] = {
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
        "uncovered_keys": [f"np:{k.dtype.str}" if isinstance(k, np.generic) else "int" for k in uncovered],
        "ic_threshold_type": type(results.ic_threshold).__name__,
        "search_coverage_complete_type": type(results.search_coverage_complete).__name__,
    }
    out: dict[str, Any] = {
        "format_version": np.int64(FORMAT_VERSION),
        "analysis_mode": str(results.analysis_mode),
        # per result
        "n_cluster": n_cluster,
        "source_target_cluster": np.array([c.source_target_cluster for c in clusters], dtype=np.int64),
        "gamma": np.array([c.gamma for c in clusters], dtype=np.float64),
        "ic": np.array([c.ic for c in clusters], dtype=np.float64),
        "trial_ic": np.array([c.trial_ic for c in clusters], dtype=np.float64),
        "n_iter": np.array([c.n_iter for c in clusters], dtype=np.int64),
        "ic_vec": _ragged([c.ic_vec for c in clusters], np.dtype(np.float64)),
        "best_labels": best_labels,
        "labels": _ragged([c.labelings for c in clusters], labels_dtype, (n_cells,)),
        "frequencies": _ragged([c.frequencies for c in clusters], np.dtype(np.int64)),
        "mei": mei,
        # summary
        "ic_threshold": np.float64(results.ic_threshold),
        "consistent_clusters": np.asarray(results.consistent_clusters, dtype=np.int64),
        "best_cluster": np.int64(-1 if best is None else best.n_cluster),
        "best_resolution": np.float64(np.nan if best is None else best.gamma),
        "coverage_complete": np.bool_(results.coverage_complete),
        "search_coverage_complete": np.bool_(results.search_coverage_complete),
        "cluster_range_tested": n_cluster.copy(),
        "uncovered_targets": np.array([int(k) for k in uncovered], dtype=np.int64),
        "uncovered_target_reasons": _str_array(uncovered.values()),
        "requested_cluster_range": (
            np.empty(0, dtype=np.int64)
            if results.requested_cluster_range is None
            else np.array(results.requested_cluster_range)
        ),
        "resolution_input": (
            np.empty(0, dtype=np.float64) if results.resolution_input is None else np.array(results.resolution_input)
        ),
        "cell_names": _str_array([] if results.cell_names is None else results.cell_names),
        # method metadata (legacy top-level copies of params)
        "graph_key": str(params.get("graph_key", "")),
        "objective_function": str(params.get("objective_function", "")),
        "min_cluster_size": np.int64(params.get("min_cluster_size", -1)),
        "beta": np.float64(params["beta"]) if params.get("beta") is not None else np.float64(np.nan),
        "beta_supported": np.bool_(True),
        "beta_applied": np.bool_(True),
        "beta_support_reason": BETA_SUPPORT_REASON,
    }
    if results.cell_names is not None and np.asarray(results.cell_names).dtype.kind not in "OUT":
        raise TypeError(f"cell_names must be strings, got dtype {np.asarray(results.cell_names).dtype}.")
    for name in _DATAFRAMES:
        out[name], encoding["dataframes"][name] = _encode_frame(getattr(results, name), name)
    for name in _MAPPINGS:
        out[name], encoding["mappings"][name] = _encode_mapping(getattr(results, name), name)
    out["encoding"] = json.dumps(encoding, separators=(",", ":"))
    return out


# ---------------------------------------------------------------------------
# public: decode
# ---------------------------------------------------------------------------
_REQUIRED_KEYS = (
    "analysis_mode",
    "n_cluster",
    "source_target_cluster",
    "gamma",
    "ic",
    "trial_ic",
    "n_iter",
    "ic_vec",
    "best_labels",
    "labels",
    "frequencies",
    "mei",
    "ic_threshold",
    "search_coverage_complete",
    "uncovered_targets",
    "uncovered_target_reasons",
    "requested_cluster_range",
    "resolution_input",
    "cell_names",
    *_DATAFRAMES,
    *_MAPPINGS,
    "encoding",
)


def _ragged_parts(entry: Any, name: str, n: int) -> list[np.ndarray]:
    if not isinstance(entry, Mapping) or "values" not in entry or "offsets" not in entry:
        raise ValueError(f"{name!r} must be a dict with 'values' and 'offsets' (the ragged encoding).")
    offsets = np.asarray(entry["offsets"], dtype=np.int64)
    values = np.asarray(entry["values"])
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != values.shape[0] or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"{name!r}: offsets {offsets.tolist()[:10]} do not describe {n} results over {values.shape[0]} values."
        )
    return [values[offsets[i] : offsets[i + 1]] for i in range(n)]


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
        enc = json.loads(str(d["encoding"]))
    except (TypeError, ValueError) as err:
        raise ValueError("The 'encoding' entry of the scICE result dictionary is not valid JSON.") from err

    n_cluster = np.asarray(d["n_cluster"], dtype=np.int64)
    n = n_cluster.shape[0]
    per_result = {
        name: np.asarray(d[name]).reshape(-1) for name in ("source_target_cluster", "gamma", "ic", "trial_ic", "n_iter")
    }
    for name, arr in per_result.items():
        if arr.shape[0] != n:
            raise ValueError(f"{name!r} has {arr.shape[0]} entries but there are {n} results (n_cluster).")
    best_labels = np.asarray(d["best_labels"])
    mei = np.asarray(d["mei"])
    if best_labels.shape[0] != n or mei.shape[0] != n:
        raise ValueError(f"'best_labels'/'mei' need one row per result ({n}), got {best_labels.shape}/{mei.shape}.")
    ic_vec = _ragged_parts(d["ic_vec"], "ic_vec", n)
    labelings = _ragged_parts(d["labels"], "labels", n)
    frequencies = _ragged_parts(d["frequencies"], "frequencies", n)
    cdt = {name: _read_str_array(enc["cluster_dtypes"][name]) for name in _CLUSTER_ARRAYS}

    clusters = []
    for i in range(n):
        clusters.append(
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
        )

    present = {name: bool(np.asarray(enc["present"][name]).item()) for name in _OPTIONAL_ARRAYS}
    dtypes = enc.get("array_dtypes", {})
    optional: dict[str, Any] = {}
    for name in _OPTIONAL_ARRAYS:
        if not present[name]:
            optional[name] = None
            continue
        dtype = np.dtype(str(dtypes[name]))
        if dtype.kind in "OUT":
            values = _read_str_array(d[name])
            optional[name] = np.array(values, dtype=object) if dtype.kind == "O" else np.array(values, dtype=dtype)
        else:
            optional[name] = np.array(d[name], dtype=dtype)

    key_types = _read_str_array(enc["uncovered_keys"])
    targets = np.asarray(d["uncovered_targets"], dtype=np.int64).tolist()
    reasons = _read_str_array(d["uncovered_target_reasons"])
    if len(targets) != len(reasons):
        raise ValueError("'uncovered_targets' and 'uncovered_target_reasons' must have the same length.")
    uncovered = {
        (np.dtype(t[3:]).type(k) if t.startswith("np:") else int(k)): r
        for k, r, t in zip(targets, reasons, key_types, strict=False)
    }

    threshold = np.asarray(d["ic_threshold"]).item()
    coverage = np.asarray(d["search_coverage_complete"]).item()
    return SCICEResults(
        clusters=tuple(clusters),
        analysis_mode=str(d["analysis_mode"]),
        ic_threshold=float(threshold) if enc.get("ic_threshold_type", "float") == "float" else threshold,
        requested_cluster_range=optional["requested_cluster_range"],
        resolution_input=optional["resolution_input"],
        uncovered_targets=uncovered,
        search_coverage_complete=bool(coverage)
        if enc.get("search_coverage_complete_type", "bool") == "bool"
        else np.bool_(coverage),
        **{name: _decode_frame(d[name], enc["dataframes"][name], name) for name in _DATAFRAMES},
        **{name: _decode_mapping(d[name], enc["mappings"][name], name) for name in _MAPPINGS},
        cell_names=optional["cell_names"],
    )


# ---------------------------------------------------------------------------
# AnnData
# ---------------------------------------------------------------------------
def _is_anndata(obj: Any) -> bool:
    return hasattr(obj, "uns") and hasattr(obj, "obs_names") and hasattr(obj, "obs")


def _check_cells_match(adata: Any, results: SCICEResults, action: str) -> None:
    """Raise if ``results`` were not computed on ``adata``'s cells (in this order)."""
    obs_names = np.asarray(adata.obs_names, dtype=object)
    if results.cell_names is not None:
        names = np.asarray(results.cell_names, dtype=object)
        if names.shape != obs_names.shape:
            raise ValueError(
                f"Cannot {action}: the results describe {names.shape[0]} cells but the AnnData has "
                f"{obs_names.shape[0]} (adata.n_obs). Use the AnnData the results were computed on, or re-run "
                "scICE on this one."
            )
        mismatch = np.flatnonzero(names != obs_names)
        if mismatch.size:
            i = int(mismatch[0])
            raise ValueError(
                f"Cannot {action}: the cell names stored with the results differ from adata.obs_names "
                f"({mismatch.size} positions, first at {i}: {names[i]!r} vs {obs_names[i]!r}). Cells were "
                "subset or reordered since the fit; reorder with adata[stored_cell_names] or re-run scICE."
            )
    elif results.clusters:
        n_cells = results.clusters[0].best_labels.shape[0]
        if n_cells != obs_names.shape[0]:
            raise ValueError(
                f"Cannot {action}: the results describe {n_cells} cells but the AnnData has "
                f"{obs_names.shape[0]} (adata.n_obs)."
            )


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
    if not _is_anndata(adata):
        raise TypeError(f"adata must be an AnnData object, got {type(adata).__name__}.")
    if not isinstance(key_added, str) or not key_added:
        raise TypeError(f"key_added must be a non-empty string, got {key_added!r}.")
    results = _coerce_results(results)
    _check_cells_match(adata, results, f"write the results into adata.uns[{key_added!r}]")
    encoded = to_legacy_dict(results)
    if copy:
        adata = adata.copy()
    adata.uns[key_added] = encoded
    return adata if copy else None


def _results_from(data: Any, key: str = "scICE") -> SCICEResults:
    """Results from an AnnData (``uns[key]``), a legacy dict, results or a fitted SCICE."""
    if isinstance(data, SCICEResults):
        return data
    if _is_anndata(data):
        if key not in data.uns:
            raise KeyError(
                f"No scICE results in adata.uns[{key!r}] (available keys: {sorted(map(str, data.uns.keys()))}); "
                "run scice.write_uns(adata, est.results_) / scice.scice_clustering(adata, ...) first, or pass "
                "key= if they are stored under another key."
            )
        return from_legacy_dict(data.uns[key])
    return _coerce_results(data, "data")
