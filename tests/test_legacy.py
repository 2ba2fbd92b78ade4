"""The legacy ``uns["scICE"]`` dictionary: every seed key, lossless round trips through h5ad and zarr."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import scice
from scice import ClusterResult, SCICEResults
from scice.legacy import (
    FORMAT_VERSION,
    NewerFormatError,
    NotSciceResultsError,
    from_legacy_dict,
    ragged_get,
    to_legacy_dict,
    write_uns,
)

anndata = pytest.importorskip("anndata")

#: Every key the seed README / design brief names for ``adata.uns["scICE"]``.
SEED_KEYS = [
    "analysis_mode",
    "n_cluster",
    "source_target_cluster",
    "gamma",
    "ic",
    "ic_vec",
    "best_labels",
    "labels",
    "mei",
    "n_iter",
    "consistent_clusters",
    "best_cluster",
    "best_resolution",
    "coverage_complete",
    "search_coverage_complete",
    "uncovered_targets",
    "requested_cluster_range",
    "resolution_input",
    "target_diagnostics",
    "resolution_search_diagnostics",
    "optimization_diagnostics",
    "resolution_diagnostics",
    "parallel_layout",
    "min_cluster_size",
    "beta",
    "beta_supported",
    "beta_applied",
    "beta_support_reason",
    "cluster_range_tested",
    "cell_names",
    "graph_key",
]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def assert_identical(a, b, path="results"):
    """Stricter than ``==``: same types, dtypes, dict key order, DataFrame index and column dtypes."""
    if isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame), path
        assert list(a.columns) == list(b.columns), path
        assert list(map(str, a.dtypes)) == list(map(str, b.dtypes)), (path, a.dtypes, b.dtypes)
        assert type(a.index) is type(b.index) and a.index.equals(b.index), (path, a.index, b.index)
        for c in a.columns:
            assert_identical(a[c].to_numpy(), b[c].to_numpy(), f"{path}[{c!r}]")
        return
    assert type(a) is type(b), (path, type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, (path, a.dtype, b.dtype, a.shape, b.shape)
        if a.dtype.kind == "O":
            for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist(), strict=False)):
                assert_identical(x, y, f"{path}[{i}]")
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), path
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), (path, list(a), list(b))
        for k in a:
            assert_identical(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            assert_identical(x, y, f"{path}[{i}]")
    elif a is pd.NA:
        assert b is pd.NA, path
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert a == b, (path, a, b)


def assert_storable(value, path="uns"):
    """Only what h5ad/zarr store faithfully: str keys, arrays, scalars, strings, dicts, DataFrames."""
    assert value is not None, f"{path} is None"
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{path}: non-string key {k!r}"
            assert_storable(v, f"{path}[{k!r}]")
    elif isinstance(value, pd.DataFrame):
        assert all(isinstance(c, str) for c in value.columns), path
        for c in value.columns:
            col = value[c]
            if col.dtype == object:
                assert all(type(x) is str for x in col), f"{path}[{c!r}] holds non-strings"
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            assert all(type(x) is str for x in value.ravel()), f"{path} holds non-strings"
    else:
        assert isinstance(value, (str, np.generic, int, float, bool)), f"{path}: {type(value).__name__}"
        assert not isinstance(value, (tuple, list)), path


def _adata_for(results: SCICEResults):
    if results.cell_names is not None:
        names = list(results.cell_names)
    else:
        n = results.clusters[0].best_labels.shape[0] if results.clusters else 3
        names = [f"cell{i}" for i in range(n)]
    return anndata.AnnData(obs=pd.DataFrame(index=pd.Index(names, dtype=object)))


def reload_all(dicts: dict[str, dict], directory, fmt: str) -> dict[str, dict]:
    """Write every dict as ``uns[name]`` of one small AnnData to ``fmt`` and read them back (one file)."""
    adata = anndata.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(3)]))
    for name, d in dicts.items():
        adata.uns[name] = d
    path = directory / f"roundtrip.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        if fmt == "h5ad":
            adata.write_h5ad(path)
            loaded = anndata.read_h5ad(path)
        else:
            adata.write_zarr(path)
            loaded = anndata.read_zarr(path)
    return {name: loaded.uns[name] for name in dicts}


def _cluster(n_cluster, n_cells=6, n_boot=5, labels_max=None, source=-1, rng=None, n_part=2, ic=1.01):
    rng = rng or np.random.default_rng(n_cluster)
    best = (np.arange(n_cells) % n_cluster).astype(np.int8 if (labels_max or n_cluster) < 128 else np.int16)
    if labels_max is not None:
        best[-1] = labels_max
    parts = np.stack([np.roll(best, i) for i in range(n_part)])
    return ClusterResult(
        n_cluster=n_cluster,
        gamma=float(1e-3 * n_cluster),
        ic=ic,
        ic_vec=rng.uniform(1, 1.1, n_boot),
        best_labels=best,
        labelings=parts,
        frequencies=np.arange(1, n_part + 1, dtype=np.int64),
        mei=rng.uniform(0.5, 1, n_cells),
        n_iter=12,
        source_target_cluster=source,
        trial_ic=ic + 0.001,
    )


@pytest.fixture(scope="module")
def edge_results():
    """Hand-built results covering what a fit rarely produces."""
    names = np.array([f"cell-{i}" for i in range(6)], dtype=object)
    diag = pd.DataFrame(
        {
            "target": np.array([2, 3, 7], dtype=np.int64),
            "ok": [True, False, True],
            "lower": [1e-5, np.nan, 2e-3],
            "status": ["returned", "uncovered", ""],
            "mixed": ["a", 1, None],
            "maybe_bool": [True, None, False],
            "cat": pd.Categorical(["u", "v", "u"]),
            "small": np.array([1, 2, 3], dtype=np.int8),
        }
    )
    empty_rows = pd.DataFrame({"gamma": np.array([], dtype=np.float64), "status": np.array([], dtype=object)})
    return {
        "ragged_uncovered": SCICEResults(
            clusters=(
                _cluster(2, n_boot=3, source=2),
                _cluster(4, n_boot=7, source=3, n_part=1, ic=1.0),
                _cluster(5, n_boot=5, source=5, n_part=3, ic=1.2),
            ),
            analysis_mode="cluster_range",
            ic_threshold=1.05,
            requested_cluster_range=np.array([2, 3, 5, 7], dtype=np.int64),
            uncovered_targets={
                3: "rekeyed: the result for target 3 has 4 clusters after the merge",
                7: "never bracketed by the search",
            },
            search_coverage_complete=False,
            target_diagnostics=diag.set_axis(pd.Index([10, 20, 30]), axis=0),
            resolution_diagnostics=pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index(["r1", "r2"], dtype=object)),
            resolution_search_diagnostics=empty_rows,
            parallel_layout={
                "n_workers": 2,
                "outer_workers": 2,
                "inner_workers": 1,
                "backend": "loky",
                "layout": "processes",
            },
            params={
                "beta": 0.1,
                "min_cluster_size": 2,
                "graph_key": "distances",
                "random_state": None,
                "objective_function": "CPM",
                "np_scalar": np.float32(0.5),
                "flag": np.bool_(True),
                "pair": (1, 2),
                "names": ["a", "b"],
                "nested": {"x": None, "y": np.arange(3)},
            },
            cell_names=names,
            timings={"total_seconds": 1.5, "n_leiden_calls": 10},
        ),
        "empty": SCICEResults(
            clusters=(),
            analysis_mode="cluster_range",
            requested_cluster_range=np.array([2, 3], dtype=np.int64),
            uncovered_targets={2: "never bracketed", 3: "never bracketed"},
            search_coverage_complete=False,
        ),
        "empty_manual_no_names": SCICEResults(
            clusters=(), analysis_mode="resolution", resolution_input=np.array([0.1])
        ),
        "many_labels_no_names": SCICEResults(
            clusters=(_cluster(3, n_cells=300, labels_max=200), _cluster(2, n_cells=300)),
            analysis_mode="resolution",
            resolution_input=np.array([0.002, 0.003]),
            params={"beta": 0.1},
        ),
    }


CASES = [
    "pbmc_fit",
    "pbmc_manual_fit",
    "ragged_uncovered",
    "empty",
    "empty_manual_no_names",
    "many_labels_no_names",
    "nullable",
]


@pytest.fixture(scope="module")
def all_results(request, edge_results):
    out = {}
    for name in CASES:
        if name == "nullable":
            # Kept apart from the == checks: deep_equal (hence ==) cannot compare pd.NA.
            frame = pd.DataFrame(
                {
                    "nullable_str": pd.array(["x", None, "z"], dtype="string"),
                    "nullable_int": pd.array([1, None, 3], dtype="Int64"),
                    "nullable_bool": pd.array([True, None, False], dtype="boolean"),
                }
            )
            out[name] = dataclasses.replace(edge_results["ragged_uncovered"], optimization_diagnostics=frame)
        elif name in edge_results:
            out[name] = edge_results[name]
        else:
            out[name] = request.getfixturevalue(name).results_
    return out


#: zarr writes cost ~30 ms per stored array, so zarr gets the representative cases only.
FILE_CASES = {
    "h5ad": [c for c in CASES if c != "nullable"],
    "zarr": ["pbmc_fit", "empty"],
}


@pytest.fixture(scope="module")
def reloaded(all_results, tmp_path_factory):
    """``reloaded(fmt)``: the cases of FILE_CASES[fmt] (+ "nullable") written to one file and read back."""
    cache: dict[str, dict] = {}

    def get(fmt: str) -> dict[str, dict]:
        if fmt not in cache:
            names = [*FILE_CASES[fmt], "nullable"]
            directory = tmp_path_factory.mktemp(f"legacy_{fmt}")
            cache[fmt] = reload_all({k: to_legacy_dict(all_results[k]) for k in names}, directory, fmt)
        return cache[fmt]

    return get


@pytest.fixture(params=[c for c in CASES if c != "nullable"])
def case(request):
    return request.param


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------
def test_dict_round_trip_is_exact(all_results, case):
    results = all_results[case]
    d = to_legacy_dict(results)
    back = from_legacy_dict(d)
    assert back == results
    assert_identical(back, results)


def test_dict_is_storable_and_has_every_seed_key(all_results, case):
    d = to_legacy_dict(all_results[case])
    assert_storable(d)
    missing = [k for k in SEED_KEYS if k not in d]
    assert not missing
    assert d["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize("fmt,case", [(fmt, c) for fmt, cases in FILE_CASES.items() for c in cases])
def test_file_round_trip_is_exact(all_results, reloaded, fmt, case):
    results = all_results[case]
    loaded = reloaded(fmt)[case]
    assert [k for k in SEED_KEYS if k not in loaded] == []
    back = from_legacy_dict(loaded)
    assert back == results
    assert_identical(back, results)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_reloaded_fields_keep_dtypes_and_shapes(pbmc_fit, reloaded, fmt):
    r = pbmc_fit.results_
    loaded = reloaded(fmt)["pbmc_fit"]
    n, n_cells = len(r), r.clusters[0].best_labels.size
    assert loaded["best_labels"].shape == (n, n_cells) and loaded["best_labels"].dtype == np.int8
    assert loaded["mei"].shape == (n, n_cells) and loaded["mei"].dtype == np.float64
    assert loaded["n_cluster"].dtype == np.int64 and loaded["gamma"].dtype == np.float64
    assert loaded["labels"]["values"].shape == (sum(c.labelings.shape[0] for c in r), n_cells)
    assert loaded["labels"]["offsets"].shape == (n + 1,)
    assert loaded["ic_vec"]["values"].shape == (sum(c.ic_vec.size for c in r),)
    td = loaded["target_diagnostics"]
    # strings come back as object (pandas 2) or str (pandas 3): both are string columns
    assert td["bracketed"].dtype == bool and td["lower"].dtype == np.float64
    assert pd.api.types.is_string_dtype(td["status"])
    assert bool(loaded["beta_applied"]) is True and bool(loaded["coverage_complete"]) is True


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_nullable_extension_columns_round_trip(all_results, edge_results, reloaded, fmt):
    # Also the zarr round trip of the hand-built edge case (uncovered targets, mixed columns, None params).
    r = all_results["nullable"]
    back = from_legacy_dict(reloaded(fmt)["nullable"])
    pd.testing.assert_frame_equal(back.optimization_diagnostics, r.optimization_diagnostics)
    base = edge_results["ragged_uncovered"]
    assert dataclasses.replace(back, optimization_diagnostics=base.optimization_diagnostics) == base


# ---------------------------------------------------------------------------
# meaning of the keys
# ---------------------------------------------------------------------------
def test_keys_carry_the_seed_meaning(pbmc_fit):
    r = pbmc_fit.results_
    d = to_legacy_dict(r)
    assert d["analysis_mode"] == "cluster_range"
    np.testing.assert_array_equal(d["n_cluster"], r.n_cluster)
    np.testing.assert_array_equal(d["cluster_range_tested"], r.n_cluster)
    np.testing.assert_array_equal(d["ic"], r.ic)
    np.testing.assert_array_equal(d["gamma"], r.gamma)
    np.testing.assert_array_equal(d["source_target_cluster"], [c.source_target_cluster for c in r])
    np.testing.assert_array_equal(d["consistent_clusters"], r.consistent_clusters)
    assert d["best_cluster"] == r.best_cluster and d["best_resolution"] == r.best_resolution
    np.testing.assert_array_equal(d["requested_cluster_range"], [2, 3, 4, 5, 6])
    assert d["resolution_input"].size == 0
    assert bool(d["coverage_complete"]) == r.coverage_complete
    assert bool(d["search_coverage_complete"]) == r.search_coverage_complete
    assert d["graph_key"] == "connectivities" and d["min_cluster_size"] == 2 and d["beta"] == 0.1
    assert d["beta_supported"] and d["beta_applied"] and "igraph" in d["beta_support_reason"]
    np.testing.assert_array_equal(d["cell_names"], np.asarray(r.cell_names))
    assert d["parallel_layout"]["outer_workers"] == r.parallel_layout["outer_workers"]
    for i, c in enumerate(r):
        np.testing.assert_array_equal(d["best_labels"][i], c.best_labels)
        np.testing.assert_array_equal(d["mei"][i], c.mei)
        np.testing.assert_array_equal(ragged_get(d["ic_vec"], i), c.ic_vec)
        np.testing.assert_array_equal(ragged_get(d["labels"], i), c.labelings)
        np.testing.assert_array_equal(ragged_get(d["frequencies"], i), c.frequencies)


def test_manual_mode_keys(pbmc_manual_fit):
    d = to_legacy_dict(pbmc_manual_fit.results_)
    assert d["analysis_mode"] == "resolution"
    np.testing.assert_array_equal(d["resolution_input"], [0.005, 0.02, 0.05])
    assert d["requested_cluster_range"].size == 0 and d["uncovered_targets"].size == 0
    assert (d["source_target_cluster"] == -1).all()
    assert json.loads(d["encoding"])["present"]["requested_cluster_range"] is False
    assert (d["ic"] > 1).any()


def test_uncovered_targets_and_empty_results(edge_results):
    d = to_legacy_dict(edge_results["ragged_uncovered"])
    np.testing.assert_array_equal(d["uncovered_targets"], [3, 7])
    assert list(d["uncovered_target_reasons"]) == [
        "rekeyed: the result for target 3 has 4 clusters after the merge",
        "never bracketed by the search",
    ]
    assert not d["coverage_complete"] and not d["search_coverage_complete"]
    np.testing.assert_array_equal(d["consistent_clusters"], [2, 4])  # ic_threshold=1.05
    assert d["graph_key"] == "distances"
    assert [ragged_get(d["ic_vec"], i).size for i in range(3)] == [3, 7, 5]

    e = to_legacy_dict(edge_results["empty"])
    assert e["best_cluster"] == -1 and np.isnan(e["best_resolution"])
    assert e["n_cluster"].shape == (0,) and e["best_labels"].shape == (0, 0)
    assert e["ic_vec"]["offsets"].tolist() == [0]
    assert e["graph_key"] == "" and e["min_cluster_size"] == -1 and np.isnan(e["beta"])
    assert json.loads(e["encoding"])["present"]["cell_names"] is False and e["cell_names"].size == 0


def test_labels_use_the_smallest_lossless_int_dtype(edge_results):
    d = to_legacy_dict(edge_results["many_labels_no_names"])
    assert d["best_labels"].dtype == np.int16 and d["best_labels"].max() == 200
    assert d["labels"]["values"].dtype == np.int16
    back = from_legacy_dict(d)
    # each result gets its own original dtype back
    assert [c.best_labels.dtype for c in back] == [np.dtype(np.int8), np.dtype(np.int16)]


def test_negative_labels_keep_their_sign_and_labels_beyond_int64_are_refused(edge_results):
    r = edge_results["many_labels_no_names"]
    first = r.clusters[0]
    negative = dataclasses.replace(first, best_labels=first.best_labels.astype(np.int64) - 129)
    d = to_legacy_dict(dataclasses.replace(r, clusters=(negative,)))
    assert d["best_labels"].dtype == np.int16 and d["best_labels"].min() == -129
    assert from_legacy_dict(d).clusters[0] == negative
    huge = dataclasses.replace(first, best_labels=first.best_labels.astype(np.uint64) + np.uint64(2**63))
    with pytest.raises(ValueError, match="outside the int64 range"):
        to_legacy_dict(dataclasses.replace(r, clusters=(huge,)))


def test_decoded_arrays_are_independent_copies(pbmc_fit):
    d = to_legacy_dict(pbmc_fit.results_)
    back = from_legacy_dict(d)
    d["best_labels"][:] = 99
    d["labels"]["values"][:] = 99
    assert back.clusters[0].best_labels.max() < 99 and back.clusters[0].labelings.max() < 99
    assert not back.clusters[0].best_labels.flags.writeable


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def test_from_legacy_dict_errors(pbmc_fit):
    d = to_legacy_dict(pbmc_fit.results_)
    with pytest.raises(ValueError, match="not written by scice") as not_ours:
        from_legacy_dict({k: v for k, v in d.items() if k != "format_version"})
    assert isinstance(not_ours.value, NotSciceResultsError)
    with pytest.raises(ValueError, match="upgrade scice") as newer:
        from_legacy_dict({**d, "format_version": FORMAT_VERSION + 1})
    assert isinstance(newer.value, NewerFormatError) and newer.value.version == FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="missing keys: \\['mei'\\]"):
        from_legacy_dict({k: v for k, v in d.items() if k != "mei"})
    with pytest.raises(ValueError, match="offsets"):
        from_legacy_dict({**d, "ic_vec": {"values": d["ic_vec"]["values"], "offsets": np.array([0, 1])}})
    with pytest.raises(TypeError, match="dict"):
        from_legacy_dict([1, 2])


def test_to_legacy_dict_errors(pbmc_fit):
    r = pbmc_fit.results_
    with pytest.raises(TypeError, match="cannot be stored"):
        to_legacy_dict(dataclasses.replace(r, params={"obj": object()}))
    with pytest.raises(TypeError, match="not a string"):
        to_legacy_dict(dataclasses.replace(r, params={1: 2}))
    with pytest.raises(TypeError, match="SCICEResults"):
        to_legacy_dict("nope")
    with pytest.raises(ValueError, match="not fitted"):
        to_legacy_dict(scice.SCICE(cluster_range=(2, 3)))


# ---------------------------------------------------------------------------
# write_uns
# ---------------------------------------------------------------------------
def test_write_uns_in_place_and_copy(pbmc_copy, pbmc_fit):
    r = pbmc_fit.results_
    assert write_uns(pbmc_copy, r) is None
    assert from_legacy_dict(pbmc_copy.uns["scICE"]) == r

    before = set(pbmc_copy.uns)
    out = write_uns(pbmc_copy, pbmc_fit, key_added="other", copy=True)  # a fitted estimator works too
    assert out is not pbmc_copy and "other" in out.uns and set(pbmc_copy.uns) == before
    assert from_legacy_dict(out.uns["other"]) == r


def test_write_uns_rejects_other_cells(pbmc_copy, pbmc_fit):
    r = pbmc_fit.results_
    with pytest.raises(ValueError, match="differ from adata.obs_names"):
        write_uns(pbmc_copy[::-1].copy(), r)
    with pytest.raises(ValueError, match="700 cells but the AnnData has 10"):
        write_uns(pbmc_copy[:10].copy(), r)
    assert "scICE" not in pbmc_copy[:10].uns
    with pytest.raises(TypeError, match="AnnData"):
        write_uns({}, r)


def test_ragged_get_bounds():
    entry = {"values": np.arange(5.0), "offsets": np.array([0, 2, 5])}
    np.testing.assert_array_equal(ragged_get(entry, 1), [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(ragged_get(entry, -1), [2.0, 3.0, 4.0])
    with pytest.raises(IndexError):
        ragged_get(entry, 2)
