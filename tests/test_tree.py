"""draw_tree: structure of the clustree-style tree on real fits and on a 20-count x 30-cluster case."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import Normalize, to_rgba

from scice._align import align_labels, label_flows
from scice._tree import FADED_ALPHA, draw_tree, tree_inputs


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def wide_case():
    """20 counts (11..30 clusters) of 30 blobs of 20-200 cells; every 4th count inconsistent.

    Count k assigns each cell to the nearest of k jittered blob centres, so clusters split,
    shrink and exchange cells from one count to the next.
    """
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(30, 2)) * 6
    points = np.concatenate([c + rng.normal(size=(int(rng.integers(20, 200)), 2)) for c in centers])
    ks = list(range(11, 31))
    labels = {}
    for k in ks:
        jittered = centers[:k] + rng.normal(scale=1.5, size=(k, 2))
        labels[k] = np.argmin(((points[:, None, :] - jittered[None]) ** 2).sum(axis=-1), axis=1)
    mei = {k: np.clip(1 - rng.gamma(1, 0.01 * (1 + 5 * (k % 4 == 0)), size=len(points)), 0, 1) for k in ks}
    ic = {k: 1.02 if k % 4 == 0 else 1.0 for k in ks}
    return {"aligned_labels": align_labels(labels), "mei": mei, "ic": ic, "consistent": {k: ic[k] < 1.005 for k in ks}}


def _nodes(ax) -> dict[tuple[int, int], object]:
    return {
        (int(g.split(":")[1]), int(g.split(":")[2])): c
        for c in ax.collections
        if (g := c.get_gid() or "").startswith("node:")
    }


def _labels(ax) -> list:
    return [t for t in ax.texts if (t.get_gid() or "").startswith("label:")]


def _edges(ax) -> dict[str, object]:
    return {c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith("edges:")}


def _mean_mei(inputs, k, cluster) -> float:
    return float(inputs["mei"][k][inputs["aligned_labels"][k] == cluster].mean())


def test_one_node_per_cluster_at_its_count(pbmc_fit):
    inputs = tree_inputs(pbmc_fit.results_)
    ax = draw_tree(**inputs)
    nodes = _nodes(ax)
    expected = {(k, int(c)) for k, labels in inputs["aligned_labels"].items() for c in np.unique(labels)}
    assert set(nodes) == expected
    assert len(nodes) == sum(pbmc_fit.results_.n_cluster)
    for (k, _), node in nodes.items():
        assert node.get_offsets()[0][1] == k  # y is the cluster count
    assert [int(t) for t in ax.get_yticks()] == list(pbmc_fit.results_.n_cluster)
    assert ax.get_ylabel() == "Number of clusters (k)"
    assert len(_labels(ax)) == len(nodes)  # a new figure has room for every label


def test_node_area_grows_with_the_cells(pbmc_fit):
    inputs = tree_inputs(pbmc_fit.results_)
    nodes = _nodes(draw_tree(**inputs))
    cells = [(int(np.sum(inputs["aligned_labels"][k] == c)), float(n.get_sizes()[0])) for (k, c), n in nodes.items()]
    cells.sort()
    assert all(a[1] <= b[1] for a, b in zip(cells[:-1], cells[1:], strict=True))
    assert cells[0][1] < cells[-1][1]


def test_edges_are_the_flows_above_the_fraction(pbmc_fit):
    inputs = tree_inputs(pbmc_fit.results_)
    flows = label_flows(inputs["aligned_labels"])
    for min_fraction in (0.0, 0.1, 0.5):
        edges = _edges(draw_tree(**inputs, min_fraction=min_fraction))
        ks = sorted(inputs["aligned_labels"])
        assert set(edges) == {f"edges:{a}-{b}" for a, b in zip(ks[:-1], ks[1:], strict=True)}
        for gid, collection in edges.items():
            k_prev, k = map(int, gid.split(":")[1].split("-"))
            part = flows[(flows.k == k) & (flows.fraction_of_child >= min_fraction)]
            assert len(collection.get_segments()) == len(part), gid
            widths = np.asarray(collection.get_linewidths())
            if len(part) > 1:  # wider for a larger fraction
                order = np.argsort(part.fraction_of_child.to_numpy(), kind="stable")
                assert np.all(np.diff(widths[order]) >= -1e-12)
    assert len(_edges(draw_tree(**inputs, min_fraction=0.0))["edges:2-3"].get_segments()) >= len(
        np.unique(inputs["aligned_labels"][3])
    )


def test_node_colours_follow_the_mean_mei(wide_case):
    cmap = plt.get_cmap("viridis")
    norm = Normalize(0.8, 1.0)
    ax = draw_tree(**wide_case, cmap="viridis", vmin=0.8)
    means = []
    for (k, c), node in _nodes(ax).items():
        mean = _mean_mei(wide_case, k, c)
        np.testing.assert_allclose(node.get_facecolor()[0][:3], cmap(norm(mean))[:3], atol=1e-6)
        means.append(mean)
    assert np.ptp(means) > 0.01  # the case has a real range of colours


def test_inconsistent_counts_are_faded(wide_case):
    ax = draw_tree(**wide_case)
    alphas = {True: set(), False: set()}
    for (k, _), node in _nodes(ax).items():
        alphas[wide_case["consistent"][k]].add(float(node.get_facecolor()[0][3]))
    assert alphas[True] == {1.0} and alphas[False] == {FADED_ALPHA}
    for gid, edges in _edges(ax).items():
        k_prev, k = map(int, gid.split(":")[1].split("-"))
        strong = wide_case["consistent"][k_prev] and wide_case["consistent"][k]
        top = float(np.max(edges.get_colors()[:, 3]))
        assert top <= (0.9 if strong else 0.9 * FADED_ALPHA) + 1e-9
    for label, k in zip(ax.get_yticklabels(), sorted(wide_case["consistent"]), strict=True):
        assert (label.get_fontweight() == "bold") == wide_case["consistent"][k]


def _boxes(ax) -> np.ndarray:
    renderer = ax.figure.canvas.get_renderer()
    return np.array([t.get_window_extent(renderer).extents for t in _labels(ax)])


def _overlaps(boxes: np.ndarray) -> int:
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    hit = (x0 < x1.T) & (x0.T < x1) & (y0 < y1.T) & (y0.T < y1)
    np.fill_diagonal(hit, False)
    return int(hit.sum() // 2)


def test_no_two_node_labels_overlap_at_20_counts_x_30_clusters(wide_case):
    ax = draw_tree(**wide_case)
    ax.figure.canvas.draw()
    n_nodes = sum(len(np.unique(v)) for v in wide_case["aligned_labels"].values())
    assert len(wide_case["aligned_labels"]) == 20 and n_nodes == sum(range(11, 31))
    boxes = _boxes(ax)
    assert len(boxes) == n_nodes  # every node is labelled
    assert _overlaps(boxes) == 0
    assert min(t.get_fontsize() for t in _labels(ax)) >= 6  # readable, not shrunk


def test_a_small_axes_shrinks_and_still_does_not_overlap(wide_case):
    fig, ax = plt.subplots(figsize=(6, 4))
    assert draw_tree(**wide_case, ax=ax) is ax
    fig.canvas.draw()
    labels = _labels(ax)
    if labels:
        assert _overlaps(_boxes(ax)) == 0
        assert min(t.get_fontsize() for t in labels) >= 4.5
    assert len(_nodes(ax)) == sum(range(11, 31))


def test_right_axis_shows_the_ic(pbmc_fit):
    results = pbmc_fit.results_
    ax = draw_tree(**tree_inputs(results))
    (right,) = ax.child_axes
    assert [t.get_text() for t in right.get_yticklabels()] == [f"{c.ic:.3f}" for c in results.clusters]
    assert ax.yaxis_inverted()


def test_tree_inputs(pbmc_fit):
    results = pbmc_fit.results_
    inputs = tree_inputs(results, threshold=1.0)  # nothing is below 1: every count inconsistent
    assert set(inputs) == {"aligned_labels", "mei", "ic", "consistent"}
    assert not any(inputs["consistent"].values())
    assert list(inputs["aligned_labels"]) == results.n_cluster.tolist()
    ax = draw_tree(**inputs)
    assert {float(n.get_facecolor()[0][3]) for n in _nodes(ax).values()} == {FADED_ALPHA}
    assert to_rgba(ax.get_yticklabels()[0].get_color()) != to_rgba("#1b9e77")


def test_bad_input(pbmc_fit):
    inputs = tree_inputs(pbmc_fit.results_)
    with pytest.raises(ValueError, match="no cluster count"):
        draw_tree({}, {}, {}, {})
    with pytest.raises(ValueError, match="missing"):
        draw_tree(**{**inputs, "ic": {}})
    with pytest.raises(ValueError, match="one value per cell"):
        draw_tree(**{**inputs, "mei": {k: v[:-1] for k, v in inputs["mei"].items()}})
