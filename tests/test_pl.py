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


# --- scice.pl.ic / stability / tree: scanpy's contract and what they draw -------------------------------------------


@pytest.fixture(scope="module")
def pbmc_tl(pbmc):
    """pbmc68k_reduced after scice.tl.scice(cluster_range=(2, 6)), results under key "sc"."""
    adata = pbmc.copy()
    scice.tl.scice(adata, cluster_range=(2, 6), key_added="sc", random_state=0, n_trials=8, n_bootstrap=30)
    return adata


PLOTS = {
    "ic": lambda adata, **kw: scice.pl.ic(adata, key="sc", **kw),
    "stability": lambda adata, **kw: scice.pl.stability(adata, key="sc", **kw),
    "tree": lambda adata, **kw: scice.pl.tree(adata, key="sc", **kw),
}


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_scanpy_plotting_contract(name, pbmc_tl, tmp_path):
    plot = PLOTS[name]
    ax = plot(pbmc_tl, show=False)
    assert isinstance(ax, matplotlib.axes.Axes)
    fig = plot(pbmc_tl, return_fig=True)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert plot(pbmc_tl, show=True) is None
    path = tmp_path / f"{name}.png"
    assert isinstance(plot(pbmc_tl, show=False, save=path), matplotlib.axes.Axes)
    _assert_png_file(path)
    sc = pytest.importorskip("scanpy")
    old = sc.settings.figdir
    sc.settings.figdir = tmp_path / "figs"
    try:
        plot(pbmc_tl, show=False, save="_pbmc.pdf")
        plot(pbmc_tl, show=False, save=True)
    finally:
        sc.settings.figdir = old
    assert (tmp_path / "figs" / f"scice_{name}_pbmc.pdf").stat().st_size > 1000
    _assert_png_file(tmp_path / "figs" / f"scice_{name}.png")
    given = plt.subplots()[1]
    assert plot(pbmc_tl, ax=given, show=False) is given


def _assert_png_file(path):
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image[..., :3].std() > 0.05


def test_ic_axis_is_numeric_with_a_gap_and_its_reason(pbmc_fit):
    full = pbmc_fit.results_
    reason = "pre-filter: every search probe in the interval had IC >= 1.15"
    gappy = dataclasses.replace(
        full, clusters=tuple(c for c in full.clusters if c.n_cluster != 4), uncovered_targets={4: reason}
    )
    ax = scice.pl.ic(gappy, show=False)
    ks = [int(k) for k in gappy.n_cluster]
    (medians,) = [c for c in ax.collections if c.get_gid() == "ic:medians"]
    np.testing.assert_array_equal(medians.get_offsets()[:, 0], ks)  # at x = k, not at 0, 1, 2, ...
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3", "4", "5", "6"]
    np.testing.assert_array_equal(ax.get_xticks(), [2, 3, 4, 5, 6])
    (band,) = [p for p in ax.patches if p.get_gid() == "gap:4"]
    x0, x1 = band.get_x(), band.get_x() + band.get_width()
    assert x0 < 4 < x1 and x1 - x0 < 1
    (text,) = [t for t in ax.texts if t.get_gid() == "gap_reason:4"]
    assert text.get_position()[0] == 4 and " ".join(text.get_text().split()) == reason
    assert "no result" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Targets without a result: 4" in ax.get_title()
    # the full fit has no gap
    ax = scice.pl.ic(full, show=False)
    assert not [p for p in ax.patches if (p.get_gid() or "").startswith("gap:")]


def test_ic_threshold_defaults_to_the_stored_one(pbmc_manual_fit):
    results = dataclasses.replace(pbmc_manual_fit.results_, ic_threshold=float(np.sort(pbmc_manual_fit.results_.ic)[1]))
    ax = scice.pl.ic(results, show=False)
    assert len(_threshold_lines(ax, results.ic_threshold)) == 1
    bold = [t.get_text() for t in ax.get_xticklabels() if t.get_fontweight() == "bold"]
    assert bold == [str(k) for k in results.consistent()]


def test_stability_labels_the_clusters_of_k(pbmc_tl):
    k = 5
    ax = scice.pl.stability(pbmc_tl, k=k, key="sc", show=False)
    ids = pbmc_tl.obs[f"sc_k{k}"]
    labels = {t.get_gid(): t for t in ax.texts if (t.get_gid() or "").startswith("cluster_label:")}
    assert sorted(labels) == sorted(f"cluster_label:{c}" for c in ids.cat.categories)
    coords = pbmc_tl.obsm["X_umap"]
    for c in ids.cat.categories:
        np.testing.assert_allclose(labels[f"cluster_label:{c}"].get_position(), np.median(coords[ids == c], axis=0))
    (cells,) = [c for c in ax.collections if c.get_gid() == "cells"]
    np.testing.assert_allclose(np.sort(cells.get_array()), np.sort(pbmc_tl.obs[f"sc_mei_k{k}"]))
    assert f"k = {k}," in ax.get_title() and "inconsistent" not in ax.get_title()
    assert not [c for c in ax.collections if c.get_gid() == "isolated"]
    with pytest.raises(KeyError, match=r"sc\.tl\.umap"):
        scice.pl.stability(pbmc_tl, key="sc", basis="tsne", show=False)


def test_stability_marks_isolated_cells(pbmc_copy):
    adata = pbmc_copy
    graph = adata.obsp["connectivities"].tolil()
    for cell in (3, 400):
        graph[cell, :] = 0
        graph[:, cell] = 0
    adata.obsp["connectivities"] = graph.tocsr()
    with pytest.warns(UserWarning, match="no edges"):
        scice.tl.scice(adata, resolution=[0.001], key_added="iso", n_trials=4, n_bootstrap=10)
    ax = scice.pl.stability(adata, key="iso", show=False)
    (marks,) = [c for c in ax.collections if c.get_gid() == "isolated"]
    np.testing.assert_allclose(marks.get_offsets(), adata.obsm["X_umap"][[3, 400]])
    assert "isolated cells (2" in ax.get_legend().get_texts()[0].get_text()


def test_tree_ids_are_the_label_columns(pbmc_tl):
    ax = scice.pl.tree(pbmc_tl, key="sc", show=False)
    results = scice.legacy.from_legacy_dict(pbmc_tl.uns["sc"])
    for k in results.consistent().tolist():
        column = pbmc_tl.obs[f"sc_k{k}"]
        drawn = sorted(
            int(t.get_gid().split(":")[2]) for t in ax.texts if (t.get_gid() or "").startswith(f"label:{k}:")
        )
        assert drawn == sorted(int(c) for c in column.cat.categories)
        nodes = {c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith(f"node:{k}:")}
        biggest = max(nodes, key=lambda g: float(nodes[g].get_sizes()[0]))
        assert biggest == f"node:{k}:{column.value_counts().idxmax()}"


def _synthetic_results(n_counts=20, n_clusters=30, seed=0):
    """SCICEResults of 20 counts (11..30 clusters) x up to 30 clusters; every 4th count inconsistent."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, 2)) * 6
    points = np.concatenate([c + rng.normal(size=(int(rng.integers(20, 200)), 2)) for c in centers])
    clusters = []
    for k in range(n_clusters - n_counts + 1, n_clusters + 1):
        jittered = centers[:k] + rng.normal(scale=1.5, size=(k, 2))
        labels = np.argmin(((points[:, None, :] - jittered[None]) ** 2).sum(axis=-1), axis=1)
        ic = 1.02 if k % 4 == 0 else 1.0
        clusters.append(
            scice.ClusterResult(
                n_cluster=len(np.unique(labels)),
                gamma=1e-4 * k,
                ic=ic,
                ic_vec=np.full(10, ic),
                best_labels=labels,
                labelings=labels[None],
                frequencies=np.ones(1),
                mei=np.clip(1 - rng.gamma(1, 0.01 * (1 + 5 * (k % 4 == 0)), size=len(points)), 0, 1),
                n_iter=10,
                source_target_cluster=k,
                trial_ic=ic,
            )
        )
    return scice.SCICEResults(clusters=tuple(clusters), analysis_mode="cluster_range")


def _label_boxes(ax):
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    labels = [t for t in ax.texts if (t.get_gid() or "").startswith("label:")]
    return np.array([t.get_window_extent(renderer).extents for t in labels])


def test_tree_is_readable_at_20_counts_x_30_clusters():
    results = _synthetic_results()
    assert len(results) == 20 and max(results.n_cluster) == 30
    ax = scice.pl.tree(results, show=False)
    n_nodes = sum(len(np.unique(c.best_labels)) for c in results.clusters)
    nodes = [c for c in ax.collections if (c.get_gid() or "").startswith("node:")]
    assert len(nodes) == n_nodes
    boxes = _label_boxes(ax)
    assert len(boxes) == n_nodes  # every node labelled, none dropped for lack of room
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    overlap = (x0 < x1.T) & (x0.T < x1) & (y0 < y1.T) & (y0.T < y1)
    np.fill_diagonal(overlap, False)
    assert not overlap.any()
    assert min(t.get_fontsize() for t in ax.texts if (t.get_gid() or "").startswith("label:")) >= 6
    edges = [c for c in ax.collections if (c.get_gid() or "").startswith("edges:")]
    assert len(edges) == 19
    # consistent rows opaque, inconsistent ones faded
    alphas = {int(c.get_gid().split(":")[1]): float(c.get_facecolor()[0][3]) for c in nodes}
    assert {alphas[k] for k in alphas if k % 4 == 0} == {0.3} and {alphas[k] for k in alphas if k % 4} == {1.0}


def test_tree_errors(pbmc_tl):
    with pytest.raises(ValueError, match="min_fraction must lie in"):
        scice.pl.tree(pbmc_tl, key="sc", min_fraction=2, show=False)
    empty = scice.SCICEResults(clusters=(), analysis_mode="cluster_range")
    with pytest.raises(ValueError, match="no cluster count to draw"):
        scice.pl.tree(empty, show=False)
