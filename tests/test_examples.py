"""Every script in examples/ runs to the end and writes the figures it promises."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> figures it must write into $SCICE_EXAMPLES_OUT
FIGURES = {
    "quickstart.py": [],
    "plot_manual_resolution.py": ["manual_resolution_counts.png", "manual_resolution_ic.png"],
    "plot_parameter_sweep.py": ["parameter_sweep_beta.png"],
    "plot_custom_scorer.py": ["custom_scorer_ari_vs_ecs.png"],
    "plot_dask.py": ["dask_vs_serial.png"],
    "plot_choosing_k.py": [
        "choosing_k_ic.png",
        "choosing_k_tree.png",
        "choosing_k_stability.png",
        "choosing_k_umap.png",
    ],
    "plot_pbmc_quickstart.py": ["pbmc_ic.png", "pbmc_umap.png", "pbmc_ari.png", "pbmc_stability.png"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(FIGURES)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(FIGURES))
def test_example_runs(script, tmp_path, monkeypatch):
    pytest.importorskip("scanpy")
    if script == "plot_dask.py":
        pytest.importorskip("dask.distributed")
    plt = pytest.importorskip("matplotlib.pyplot")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    plt.switch_backend("Agg")
    out = tmp_path / "out"
    monkeypatch.setenv("SCICE_EXAMPLES_OUT", str(out))
    monkeypatch.chdir(tmp_path)
    try:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    finally:
        plt.close("all")
    for name in FIGURES[script]:
        png = out / name
        assert png.is_file(), f"{script} did not write {name}"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, f"{name} looks empty"
