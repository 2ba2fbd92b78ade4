"""Plots: plot_ic and plot_stability draw what they claim, from every kind of input."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import scice  # noqa: E402
from scice.legacy import to_legacy_dict, write_uns  # noqa: E402
from scice.pl import CONSISTENT_COLOR, INCONSISTENT_COLOR, NEUTRAL_COLOR, THRESHOLD_COLOR, _format_gammas  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture()
def adata_with_results(pbmc_copy, pbmc_fit):
    write_uns(pbmc_copy, pbmc_fit.results_)
    return pbmc_copy


def _threshold_lines(ax, threshold):
    return [
        line
        for line in ax.get_lines()
        if np.allclose(line.get_ydata(), threshold) and mcolors.same_color(line.get_color(), THRESHOLD_COLOR)
    ]


def _gamma_axis(ax):
    return [child for child in ax.child_axes if child.get_xlabel().startswith("Leiden resolution")]


def _assert_png(fig, path):
    fig.savefig(path, dpi=80, bbox_inches="tight")
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # not a blank canvas
    assert image[..., :3].std() > 0.05


@pytest.mark.parametrize("source", ["results", "dict", "adata"])
def test_plot_ic_from_every_input(source, pbmc_fit, adata_with_results, tmp_path):
    r = pbmc_fit.results_
    data = {"results": r, "dict": to_legacy_dict(r), "adata": adata_with_results}[source]
    fig, ax = scice.plot_ic(data, threshold=1.005, show_gamma=True)
    assert isinstance(fig, matplotlib.figure.Figure) and ax.figure is fig
    assert len(_threshold_lines(ax, 1.005)) == 1
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in r.n_cluster]
    assert ax.get_xlabel() == "Number of clusters" and "IC" in ax.get_ylabel()
    _assert_png(fig, tmp_path / f"ic_{source}.png")


def test_plot_ic_highlights_consistent_counts(pbmc_manual_fit):
    r = pbmc_manual_fit.results_
    ic = np.sort(r.ic)
    threshold = float((ic[0] + ic[1]) / 2)  # exactly one consistent count
    fig, ax = scice.plot_ic(r, threshold=threshold)
    consistent = r.ic < threshold
    assert consistent.sum() == 1
    labels = ax.get_xticklabels()
    for label, ok in zip(labels, consistent, strict=False):
        expected = CONSISTENT_COLOR if ok else "black"
        assert mcolors.same_color(label.get_color(), expected), label.get_text()
    # the median diamonds carry the status colour, at the reported IC
    diamonds = [c for c in ax.collections if len(c.get_offsets()) == len(r) and c.get_facecolors().shape[0] == len(r)]
    assert diamonds, "median markers missing"
    offsets = diamonds[-1].get_offsets()
    np.testing.assert_allclose(offsets[:, 1], r.ic)
    expected = [mcolors.to_rgba(CONSISTENT_COLOR if ok else INCONSISTENT_COLOR) for ok in consistent]
    np.testing.assert_allclose(diamonds[-1].get_facecolors(), expected)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("consistent") for t in legend) and any("threshold" in t for t in legend)
    assert len(_threshold_lines(ax, threshold)) == 1


@pytest.mark.parametrize("threshold", [float("inf"), None])
def test_plot_ic_without_threshold(pbmc_manual_fit, threshold, tmp_path):
    """inf is the estimator's default ic_threshold (stored in the legacy dict); None means the same."""
    r = pbmc_manual_fit.results_
    fig, ax = scice.plot_ic(r, threshold=threshold)
    assert _threshold_lines(ax, float("inf")) == [] and not [
        line for line in ax.get_lines() if line.get_linestyle() == "--"
    ]
    lo, hi = ax.get_ylim()
    assert np.isfinite([lo, hi]).all() and lo < 1.0 and hi > r.ic.max()
    # no consistent/inconsistent colouring: every count in one colour, no status legend
    diamonds = [c for c in ax.collections if len(c.get_offsets()) == len(r) and c.get_facecolors().shape[0] == len(r)]
    colours = {tuple(c) for c in diamonds[-1].get_facecolors()}
    assert colours == {mcolors.to_rgba(NEUTRAL_COLOR)}
    assert ax.get_legend() is None
    _assert_png(fig, tmp_path / "ic_no_threshold.png")


def test_plot_ic_rejects_a_bad_threshold(pbmc_fit):
    with pytest.raises(TypeError, match="threshold must be a number"):
        scice.plot_ic(pbmc_fit.results_, threshold="high")
    with pytest.raises(ValueError, match="threshold is NaN"):
        scice.plot_ic(pbmc_fit.results_, threshold=float("nan"))


def test_plot_ic_gamma_annotations(pbmc_fit):
    r = pbmc_fit.results_
    fig, ax = scice.plot_ic(r, show_gamma=True)
    (top,) = _gamma_axis(ax)
    texts = [t.get_text() for t in top.get_xticklabels()]
    assert texts == _format_gammas(r.gamma.tolist())
    assert all("e-" in t for t in texts)  # CPM gammas on this graph are < 1e-2
    fig, ax = scice.plot_ic(r, show_gamma=False)
    assert _gamma_axis(ax) == []


def test_plot_ic_into_given_axes(pbmc_fit):
    fig, (left, right) = plt.subplots(1, 2)
    out_fig, out_ax = scice.plot_ic(pbmc_fit.results_, ax=right, title=None)
    assert out_fig is fig and out_ax is right
    assert len(_threshold_lines(right, 1.005)) == 1 and not left.has_data()


def test_plot_ic_empty_and_uncovered(pbmc_fit):
    empty = scice.SCICEResults(
        clusters=(),
        analysis_mode="cluster_range",
        requested_cluster_range=np.array([2, 3]),
        uncovered_targets={2: "x", 3: "y"},
    )
    fig, ax = scice.plot_ic(empty)
    texts = [t.get_text() for t in ax.texts]
    assert "No cluster count was evaluated" in texts and any("2, 3" in t for t in texts)

    r = dataclasses.replace(pbmc_fit.results_, uncovered_targets={7: "never bracketed"})
    fig, ax = scice.plot_ic(r)
    assert "Targets without a result: 7" in ax.get_title()


def test_plot_ic_missing_results_key(pbmc_copy):
    with pytest.raises(KeyError, match="scice_clustering"):
        scice.plot_ic(pbmc_copy)


def test_plot_stability(adata_with_results, pbmc_fit, tmp_path):
    r = pbmc_fit.results_
    fig, ax = scice.plot_stability(adata_with_results)
    (points,) = ax.collections
    assert len(points.get_offsets()) == adata_with_results.n_obs
    # coloured by the best count's mei (drawn least consistent last)
    np.testing.assert_allclose(np.sort(points.get_array()), np.sort(r.best.mei))
    assert f"k = {r.best_cluster}" in ax.get_title()
    assert ax.get_xlabel() == "UMAP1"
    _assert_png(fig, tmp_path / "stability.png")

    k = int(r.n_cluster[-1])
    fig, ax = scice.plot_stability(adata_with_results, n_cluster=k)
    assert f"k = {k}" in ax.get_title()
    np.testing.assert_allclose(np.sort(ax.collections[0].get_array()), np.sort(r[k].mei))


def test_plot_stability_errors(adata_with_results, pbmc_fit):
    no_umap = adata_with_results.copy()
    del no_umap.obsm["X_umap"]
    with pytest.raises(KeyError, match=r"sc\.tl\.umap"):
        scice.plot_stability(no_umap)
    with pytest.raises(KeyError, match="No result with 99 clusters"):
        scice.plot_stability(adata_with_results, n_cluster=99)
    with pytest.raises(TypeError, match="needs the AnnData"):
        scice.plot_stability(pbmc_fit.results_)
