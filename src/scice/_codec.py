"""A type-tagged codec for what ``adata.uns`` can store: h5ad/zarr-safe and lossless.

``AnnData.write_h5ad`` and ``write_zarr`` store string keys, numpy arrays and
scalars, strings, nested dicts and DataFrames, and lose the rest on the way: ``None``
values, Python ``int``/``float``/``bool`` versus numpy scalars, tuples and lists,
numpy string dtypes, object columns of mixed values, extension dtypes, DataFrame
indexes. Each encoder here returns ``(stored, spec)``: ``stored`` is what goes into
``adata.uns``, ``spec`` is a small JSON-able description of what was changed, and
the matching decoder takes both and gives the original value back exactly.

Values and mappings
    :func:`encode_value` tags each value (``"none"``, ``"bool"``, ``"np:<dtype>"``,
    ``"int"``, ``"float"``, ``"str"``, ``"ndarray"``, ``"strarray:<dtype>:<shape>"``,
    ``"list:<kind>:<shape>"``, ``"tuple:<kind>:<shape>"``, ``"dict"``);
    :func:`encode_mapping` keeps the key order and leaves ``None`` values out of the
    stored dict.
DataFrames
    :func:`encode_frame` stores columns of strings as str arrays, columns of other
    Python objects as JSON strings, and records column dtypes and the index.
Ragged arrays
    :func:`encode_ragged` stacks a list of arrays as ``{"values", "offsets"}``;
    :func:`decode_ragged` checks the offsets and splits them again, and
    :func:`ragged_get` (public as ``scice.legacy.ragged_get``) slices out one part.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MISSING",
    "str_array",
    "read_str_array",
    "encode_value",
    "decode_value",
    "encode_mapping",
    "decode_mapping",
    "encode_frame",
    "decode_frame",
    "decode_array",
    "encode_ragged",
    "decode_ragged",
    "ragged_get",
]


class _Missing:
    """Marker for a ``None`` value that is left out of the stored dict."""


#: What :func:`encode_value` stores for ``None``: nothing (the key is left out).
MISSING = _Missing()


# ---------------------------------------------------------------------------
# strings
# ---------------------------------------------------------------------------
def str_array(values: Any) -> np.ndarray:
    """1-d object array of Python ``str`` (what h5ad and zarr store as strings)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = str(v)
    return out


def read_str_array(values: Any) -> list[str]:
    """Strings back from h5ad (object), zarr (``StringDType``) or memory."""
    return [str(v) for v in np.asarray(values, dtype=object).ravel().tolist()]


# ---------------------------------------------------------------------------
# scalars, arrays and mappings
# ---------------------------------------------------------------------------
def encode_value(value: Any, where: str) -> tuple[Any, Any]:
    """Encode one value for ``adata.uns``.

    Parameters
    ----------
    value : Any
        ``None``, a bool, int, float or str, a numpy scalar or array, a list or
        tuple of scalars of one type, or a mapping of these.
    where : str
        Name of the value, for error messages.

    Returns
    -------
    stored : Any
        What to store; :data:`MISSING` for ``None``.
    tag : str or dict
        The type tag; for a mapping the spec of :func:`encode_mapping`.

    Raises
    ------
    TypeError
        If the value (or a nested one) cannot be stored.
    """
    if value is None:
        return MISSING, "none"
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
            return str_array(value.ravel()), f"strarray:{value.dtype.str}:{json.dumps(value.shape)}"
        return np.array(value), "ndarray"
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            raise TypeError(f"{where}: cannot store the mixed or nested sequence {value!r}; use scalars of one type.")
        stored = str_array(arr.ravel()) if arr.dtype.kind in "UT" else arr
        kind = "str" if arr.dtype.kind in "UT" else "num"
        return stored, f"{type(value).__name__}:{kind}:{json.dumps(arr.shape)}"
    if isinstance(value, Mapping):
        return encode_mapping(value, where)
    raise TypeError(
        f"{where}: values of type {type(value).__name__} cannot be stored in adata.uns; "
        "use None, bool, int, float, str, numpy arrays or dicts of these."
    )


def encode_mapping(mapping: Mapping[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Encode a mapping with string keys: ``(stored, spec)``.

    ``spec`` holds the keys in order, their tags and the specs of nested mappings;
    keys whose value is ``None`` are in ``spec`` only.
    """
    stored: dict[str, Any] = {}
    keys, tags, children = [], [], {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: key {key!r} is not a string; adata.uns only stores string keys.")
        v, tag = encode_value(value, f"{where}[{key!r}]")
        keys.append(key)
        if isinstance(tag, dict):
            children[key] = tag
            tag = "dict"
        tags.append(tag)
        if v is not MISSING:
            stored[key] = v
    spec = {"keys": keys, "tags": tags, "children": children}
    return stored, spec


def decode_value(stored: Any, tag: str, spec: Mapping[str, Any] | None, where: str) -> Any:
    """The value :func:`encode_value` encoded as ``stored`` with ``tag`` (``spec`` for a mapping)."""
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
        values = read_str_array(stored)
        return np.array(values, dtype=np.dtype(dtype) if dtype != "|O" else object).reshape(json.loads(shape))
    if tag.startswith(("list:", "tuple:")):
        container, kind, shape = tag.split(":", 2)
        arr = np.array(read_str_array(stored)) if kind == "str" else np.asarray(stored)
        values = arr.reshape(json.loads(shape)).tolist()
        return tuple(values) if container == "tuple" else values
    if tag == "dict":
        return decode_mapping(stored, spec, where)
    raise ValueError(f"{where}: unknown stored type tag {tag!r}; was this written by a newer scice?")


def decode_mapping(stored: Mapping[str, Any], spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The mapping :func:`encode_mapping` encoded as ``(stored, spec)``, in its key order."""
    keys = read_str_array(spec["keys"])
    tags = read_str_array(spec["tags"])
    children = spec.get("children", {}) or {}
    out = {}
    for key, tag in zip(keys, tags, strict=False):
        if tag != "none" and key not in stored:
            raise ValueError(f"{where}: key {key!r} is missing from the stored dictionary.")
        out[key] = decode_value(stored.get(key), tag, children.get(key), f"{where}[{key!r}]")
    return out


def decode_array(stored: Any, dtype: str) -> np.ndarray:
    """An array stored by h5ad or zarr back in its original ``dtype`` (strings too, whatever they came back as)."""
    dtype = np.dtype(str(dtype))
    if dtype.kind in "OUT":
        values = read_str_array(stored)
        return np.array(values, dtype=object) if dtype.kind == "O" else np.array(values, dtype=dtype)
    return np.array(stored, dtype=dtype)


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


def encode_frame(df: pd.DataFrame, where: str) -> tuple[pd.DataFrame, dict[str, Any]]:
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
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
            # plain strings (object with pandas 2, str with pandas 3) as a string array; else JSON
            values = col.to_numpy(dtype=object)
            if all(type(v) is str for v in values):
                out[c] = str_array(values)
                continue
        else:
            out[c] = col.to_numpy(copy=True) if not isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col
            continue
        json_columns.append(c)
        out[c] = str_array([_json_cell(v, f"{where}[{c!r}]") for v in col.to_numpy(dtype=object)])
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


def decode_frame(stored: Any, spec: Mapping[str, Any], where: str) -> pd.DataFrame:
    """The DataFrame :func:`encode_frame` encoded as ``(stored, spec)``."""
    if not isinstance(stored, pd.DataFrame):
        raise TypeError(f"{where} should be a DataFrame, got {type(stored).__name__}.")
    columns = read_str_array(spec["columns"])
    dtypes = dict(zip(columns, read_str_array(spec["dtypes"]), strict=False))
    json_columns = set(read_str_array(spec["json_columns"]))
    if list(stored.columns) != columns:
        missing = sorted(set(columns) - set(stored.columns))
        if missing:
            raise ValueError(f"{where} lacks the columns {missing}.")
    data = {}
    for c in columns:
        col = stored[c]
        if c in json_columns:
            values = np.empty(len(col), dtype=object)
            values[:] = [json.loads(v) for v in read_str_array(col.to_numpy(dtype=object))]
            col = pd.Series(values, dtype=object)
        elif dtypes[c] == "object":
            col = pd.Series(np.array(read_str_array(col.to_numpy(dtype=object)), dtype=object), dtype=object)
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
# ragged arrays
# ---------------------------------------------------------------------------
def encode_ragged(parts: list[np.ndarray], dtype: np.dtype, row_shape: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Stack arrays along their first axis as ``{"values": ..., "offsets": ...}``.

    Part ``i`` is ``values[offsets[i]:offsets[i + 1]]``; ``row_shape`` is the shape
    of one row of ``values`` when there are no parts.
    """
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    if parts:
        offsets[1:] = np.cumsum([p.shape[0] for p in parts])
        values = np.concatenate([np.asarray(p, dtype=dtype) for p in parts], axis=0)
    else:
        values = np.empty((0, *row_shape), dtype=dtype)
    return {"values": values, "offsets": offsets}


def decode_ragged(entry: Any, name: str, n: int) -> list[np.ndarray]:
    """The ``n`` parts of a ragged entry written by :func:`encode_ragged`, after checking its offsets."""
    if not isinstance(entry, Mapping) or "values" not in entry or "offsets" not in entry:
        raise ValueError(f"{name!r} must be a dict with 'values' and 'offsets' (the ragged encoding).")
    offsets = np.asarray(entry["offsets"], dtype=np.int64)
    values = np.asarray(entry["values"])
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != values.shape[0] or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"{name!r}: offsets {offsets.tolist()[:10]} do not describe {n} results over {values.shape[0]} values."
        )
    return [values[offsets[i] : offsets[i + 1]] for i in range(n)]


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
