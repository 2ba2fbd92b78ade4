"""The type-tagged codec: every tag round-trips exactly, in memory and through an h5ad file."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scice import _codec as codec

anndata = pytest.importorskip("anndata")

#: One value per tag of :func:`scice._codec.encode_value`.
VALUES = {
    "none": None,
    "bool": True,
    "np_bool": np.bool_(False),
    "np_float32": np.float32(0.25),
    "np_int8": np.int8(-3),
    "int": 7,
    "float": 1.5,
    "str": "CPM",
    "ndarray": np.arange(6, dtype=np.int16).reshape(2, 3),
    "unicode_array": np.array([["a", "bc"], ["d", "e"]]),
    "object_array": np.array(["x", "y"], dtype=object),
    "num_list": [1, 2, 3],
    "str_tuple": ("a", "b"),
    "nested_list": [[1, 2], [3, 4]],
    "dict": {"z": None, "a": np.arange(2.0), "inner": {"k": "v"}},
}


def _h5ad_trip(stored: dict, tmp_path) -> dict:
    adata = anndata.AnnData(obs=pd.DataFrame(index=["c0", "c1", "c2"]))
    adata.uns["x"] = stored
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(tmp_path / "codec.h5ad")
        return anndata.read_h5ad(tmp_path / "codec.h5ad").uns["x"]


def _assert_same(a, b, path="value"):
    assert type(a) is type(b), (path, type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist(), path
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b, path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


@pytest.mark.parametrize("through_file", [False, True])
def test_mapping_round_trip_keeps_types_and_key_order(through_file, tmp_path):
    stored, spec = codec.encode_mapping(VALUES, "values")
    assert "none" not in stored and "none" in spec["keys"]
    assert "z" not in stored["dict"]
    spec = json.loads(json.dumps(spec))  # what to_legacy_dict does with it
    if through_file:
        stored = _h5ad_trip(stored, tmp_path)
    _assert_same(codec.decode_mapping(stored, spec, "values"), VALUES)


def test_encode_value_errors():
    with pytest.raises(TypeError, match=r"x\[0\]: cannot store the mixed or nested sequence"):
        codec.encode_value([1, "a", None], "x[0]")
    with pytest.raises(TypeError, match="values of type object cannot be stored"):
        codec.encode_value(object(), "x")
    with pytest.raises(TypeError, match="key 1 is not a string"):
        codec.encode_mapping({1: 2}, "m")
    with pytest.raises(ValueError, match="unknown stored type tag 'complex'"):
        codec.decode_value(1j, "complex", None, "x")
    stored, spec = codec.encode_mapping({"a": 1}, "m")
    with pytest.raises(ValueError, match="key 'a' is missing"):
        codec.decode_mapping({}, spec, "m")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "target": np.array([2, 3, 7], dtype=np.int64),
            "small": np.array([1, 2, 3], dtype=np.int8),
            "lower": [1e-5, np.nan, 2e-3],
            "status": ["returned", "uncovered", ""],
            "mixed": ["a", 1, None],
            "cat": pd.Categorical(["u", "v", "u"]),
        },
        index=pd.Index([10, 20, 30]),
    )


@pytest.mark.parametrize("through_file", [False, True])
def test_frame_round_trip(through_file, tmp_path):
    df = _frame()
    stored, spec = codec.encode_frame(df, "df")
    assert spec["json_columns"] == ["mixed"] and spec["range_index"] is False
    if through_file:
        stored = _h5ad_trip({"df": stored}, tmp_path)["df"]
    back = codec.decode_frame(stored, json.loads(json.dumps(spec)), "df")
    assert list(back.columns) == list(df.columns) and list(back.dtypes) == list(df.dtypes)
    assert back.index.equals(df.index) and back.index.dtype == df.index.dtype
    assert back["mixed"].tolist() == ["a", 1, None] and back["status"].tolist() == df["status"].tolist()
    pd.testing.assert_frame_equal(back.drop(columns="mixed"), df.drop(columns="mixed"))


def test_frame_errors():
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        codec.encode_frame({"a": [1]}, "df")
    with pytest.raises(TypeError, match="column name 0 is not a string"):
        codec.encode_frame(pd.DataFrame({0: [1]}), "df")
    with pytest.raises(ValueError, match="duplicated column names"):
        codec.encode_frame(pd.DataFrame([[1, 2]], columns=["a", "a"]), "df")
    with pytest.raises(TypeError, match="cannot store value"):
        codec.encode_frame(pd.DataFrame({"o": [object()]}), "df")
    stored, spec = codec.encode_frame(_frame(), "df")
    with pytest.raises(ValueError, match=r"lacks the columns \['mixed'\]"):
        codec.decode_frame(stored.drop(columns="mixed"), spec, "df")
    with pytest.raises(TypeError, match="should be a DataFrame"):
        codec.decode_frame({}, spec, "df")


def test_ragged_round_trip_and_errors():
    parts = [np.arange(3.0), np.arange(0.0), np.arange(2.0)]
    entry = codec.encode_ragged(parts, np.dtype(np.float64))
    assert entry["offsets"].tolist() == [0, 3, 3, 5]
    for got, want in zip(codec.decode_ragged(entry, "r", 3), parts, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(codec.ragged_get(entry, -1), parts[-1])
    empty = codec.encode_ragged([], np.dtype(np.int8), (4,))
    assert empty["values"].shape == (0, 4) and empty["values"].dtype == np.int8
    assert codec.decode_ragged(empty, "r", 0) == []
    with pytest.raises(ValueError, match="'r': offsets"):
        codec.decode_ragged(entry, "r", 2)
    with pytest.raises(ValueError, match="'values' and 'offsets'"):
        codec.decode_ragged({"values": entry["values"]}, "r", 3)


def test_decode_array_restores_dtypes():
    stored = codec.str_array(["a", "bb"])
    assert codec.decode_array(stored, "<U2").dtype == np.dtype("<U2")
    obj = codec.decode_array(stored, "|O")
    assert obj.dtype == object and [type(v) for v in obj] == [str, str]
    assert codec.decode_array(np.array([1, 2]), "<i2").dtype == np.int16
