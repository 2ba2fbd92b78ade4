"""Files of either anndata line work on this one: the fixtures in tests/data.

``tests/data/anndata-0.12.h5ad`` was written by anndata 0.12 with pandas 2 (string
columns and the index as string datasets), ``anndata-0.13.h5ad`` by anndata 0.13
with pandas 3 (``nullable-string-array`` groups); both hold non-ASCII strings,
categoricals, nullable integers and booleans, and ``uns["scICE"]`` from a real fit
(``tests/data/make_h5ad_fixture.py``). The CLI's ``light``/``run``/``plot`` read both,
and the stored results read back equal to a fit made on this line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

import scice
from scice.cli import main

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(DATA.glob("anndata-*.h5ad"))
FIT = {"resolution": [0.02, 0.2], "n_trials": 6, "n_bootstrap": 20, "random_state": 0, "ic_threshold": 1.005}
CLI_FIT = ["--resolution", "0.02", "0.2", "--n-trials", "6", "--n-bootstrap", "20", "--seed", "0", "--quiet"]


def _obs_values(adata: ad.AnnData) -> dict[str, list]:
    """obs as plain Python values (NA as None), comparable whatever the dtypes of this line."""
    out = {"index": [str(v) for v in adata.obs_names]}
    for name, col in adata.obs.items():
        out[name] = [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in col.astype(object)]
    return out


@pytest.fixture(params=FIXTURES, ids=[p.stem for p in FIXTURES])
def fixture_file(request, tmp_path) -> Path:
    copy = tmp_path / request.param.name
    shutil.copyfile(request.param, copy)
    return copy


@pytest.fixture(scope="module")
def this_line_fit():
    """The fixture's fit, made on this Python/anndata line."""
    adata = ad.read_h5ad(FIXTURES[0])
    return scice.SCICE(**FIT).fit(adata.obsp["connectivities"]).results_


def test_both_encodings_are_present():
    assert {p.name for p in FIXTURES} >= {"anndata-0.12.h5ad", "anndata-0.13.h5ad"}
    with h5py.File(DATA / "anndata-0.13.h5ad") as f:
        assert f["obs/_index"].attrs["encoding-type"] == "nullable-string-array"
        assert f["obs/donor_note"].attrs["encoding-type"] == "nullable-string-array"
    with h5py.File(DATA / "anndata-0.12.h5ad") as f:
        assert isinstance(f["obs/_index"], h5py.Dataset)
        assert f["obs/donor_note"].attrs["encoding-type"] == "string-array"


def test_stored_results_read_back_equal_to_a_fit_on_this_line(fixture_file, this_line_fit):
    stored = scice.from_legacy_dict(ad.read_h5ad(fixture_file).uns["scICE"])
    assert list(stored.cell_names) == [f"zelle-{i}-ä" for i in range(120)]
    # a fit on the matrix records no cell names and no graph key; the rest must match exactly
    assert stored.n_cluster.tolist() == this_line_fit.n_cluster.tolist()
    np.testing.assert_array_equal(stored.ic, this_line_fit.ic)
    for a, b in zip(stored.clusters, this_line_fit.clusters, strict=True):
        np.testing.assert_array_equal(a.best_labels, b.best_labels)
        np.testing.assert_array_equal(a.ic_vec, b.ic_vec)
        np.testing.assert_array_equal(a.mei, b.mei)


def test_light_keeps_obs_in_every_encoding(fixture_file, tmp_path):
    light = tmp_path / "light.h5ad"
    assert main(["light", str(fixture_file), "--output", str(light), "--n-vars", "2"]) == 0
    original, copy = ad.read_h5ad(fixture_file), ad.read_h5ad(light)
    assert copy.shape == (120, 2)
    assert _obs_values(copy) == _obs_values(original)
    assert "München" in copy.obs["donor_note"].iloc[0]
    assert isinstance(copy.obs["tissue"].dtype, pd.CategoricalDtype)
    assert copy.obs["n_umi"].isna().sum() == original.obs["n_umi"].isna().sum() > 0


def test_run_then_plot(fixture_file, tmp_path, this_line_fit):
    before = _obs_values(ad.read_h5ad(fixture_file))
    assert main(["run", str(fixture_file), *CLI_FIT]) == 0
    after = ad.read_h5ad(fixture_file)
    assert _obs_values(after) == before  # only uns["scICE"] was replaced
    results = scice.from_legacy_dict(after.uns["scICE"])
    assert results.n_cluster.tolist() == this_line_fit.n_cluster.tolist()
    np.testing.assert_array_equal(results.ic, this_line_fit.ic)
    png = tmp_path / "ic.png"
    assert main(["plot", str(fixture_file), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_zarr_round_trip_is_exact(tmp_path, this_line_fit):
    from scice._results import deep_equal

    adata = ad.read_h5ad(FIXTURES[0])
    scice.write_uns(adata, this_line_fit)
    written = adata.uns["scICE"]
    adata.write_zarr(tmp_path / "a.zarr")
    back = ad.read_zarr(tmp_path / "a.zarr").uns["scICE"]
    assert deep_equal(back, written)
    assert scice.from_legacy_dict(back) == this_line_fit
