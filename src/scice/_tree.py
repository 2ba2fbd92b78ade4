"""A clustree-style tree of the clusters of several cluster counts.

One row of nodes per cluster count k (the y axis, numeric, small k on top),
one node per cluster, sized by its cells and coloured by its mean per-cell
consistency (``ClusterResult.mei``). An edge joins a cluster at one count to a
cluster at the next when enough of the child's cells come from that parent.
Consistent counts are drawn strong, inconsistent ones faded. Cluster ids are
the aligned ids of :func:`scice._align.align_labels`, so a label names one
lineage down the tree.

Layout: the first row is ordered by id; every next row places each node at the
barycentre of its parents (weighted by the cells it takes from each), then
spreads the row so that neighbouring nodes keep a minimum gap, moving the nodes
as little as possible (least squares, by isotonic regression). Sizes are in
points, so nodes, and the labels inside them, never overlap; when the Axes is
too small for the nominal sizes, every size shrinks by the same factor, and a
label that would be smaller than a readable font is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._align import align_layers, label_flows

__all__ = ["MIN_EDGE_FRACTION", "draw_tree", "tree_inputs"]

#: Edges carrying a smaller fraction of the child's cells are not drawn.
MIN_EDGE_FRACTION = 0.1
#: Opacity of the nodes and edges of inconsistent counts (consistent ones: 1).
FADED_ALPHA = 0.3
CONSISTENT_COLOR = "#1b9e77"  # as in scice.pl.plot_ic
INCONSISTENT_COLOR = "#8c8c8c"
#: Largest new figure, in inches; beyond it every size shrinks.
MAX_FIGSIZE = (16.0, 12.0)
#: Margins of a new figure around the tree, in points: left, right, top, bottom.
MARGINS = (62.0, 150.0, 40.0, 78.0)
#: Narrowest tree Axes of a new figure, in points, so the legend fits below it.
MIN_AXES_WIDTH = 400.0


@dataclass(frozen=True)
class _Sizes:
    """Nominal sizes in points (node diameters, gaps, row pitch, label font)."""

    d_min: float = 12.0
    d_max: float = 26.0
    gap: float = 4.0
    pitch: float = 34.0
    font: float = 7.0
    min_font: float = 4.5


def tree_inputs(results: Any, threshold: float = 1.005) -> dict[str, dict[int, Any]]:
    """The arguments of :func:`draw_tree` for every count of a fit.

    Parameters
    ----------
    results : SCICEResults
        The results (``est.results_``).
    threshold : float, default=1.005
        Counts with IC strictly below it are consistent.

    Returns
    -------
    dict
        ``aligned_labels`` (:func:`~scice._align.align_layers` of every count's
        ``best_labels``: the consistent counts carry the ids of the label
        columns), ``mei``, ``ic`` and ``consistent``, each keyed by count.
    """
    clusters = list(results.clusters)
    consistent = {c.n_cluster: bool(c.ic < threshold) for c in clusters}
    return {
        "aligned_labels": align_layers({c.n_cluster: c.best_labels for c in clusters}, consistent),
        "mei": {c.n_cluster: np.asarray(c.mei, dtype=float) for c in clusters},
        "ic": {c.n_cluster: float(c.ic) for c in clusters},
        "consistent": consistent,
    }


def _node_table(aligned: Mapping[int, np.ndarray], mei: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """One row per (k, cluster): ``n_cells`` and ``mean_mei``, sorted by k then cluster."""
    frames = []
    for k, labels in aligned.items():
        if k not in mei or np.asarray(mei[k]).shape != np.asarray(labels).shape:
            raise ValueError(f"mei needs one value per cell for every count; k={k} is missing or has another length.")
        frame = pd.DataFrame({"cluster": np.asarray(labels), "mei": np.asarray(mei[k], dtype=float)})
        table = frame.groupby("cluster").mei.agg(n_cells="size", mean_mei="mean").reset_index()
        table.insert(0, "k", int(k))
        frames.append(table)
    return pd.concat(frames, ignore_index=True).sort_values(["k", "cluster"], ignore_index=True)


def _isotonic(values: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight = blocks.pop()
            blocks[-1] = [
                (blocks[-1][0] * blocks[-1][1] + mean * weight) / (blocks[-1][1] + weight),
                blocks[-1][1] + weight,
            ]
    return np.concatenate([np.full(int(w), m) for m, w in blocks]) if blocks else np.empty(0)


def _spread(targets: np.ndarray, diameters: np.ndarray, gap: float) -> np.ndarray:
    """Positions in the order given, at least ``(d_i + d_j) / 2 + gap`` apart, closest to ``targets``."""
    offsets = np.concatenate([[0.0], np.cumsum((diameters[:-1] + diameters[1:]) / 2 + gap)])
    return _isotonic(targets - offsets) + offsets


def _layout(nodes: pd.DataFrame, flows: pd.DataFrame, sizes: _Sizes) -> np.ndarray:
    """Horizontal position (points) of every node of ``nodes``, row by row."""
    x = np.zeros(len(nodes))
    position: dict[tuple[int, int], float] = {}
    for k, row in nodes.groupby("k", sort=True):
        if not position:
            targets = np.zeros(len(row))  # first row: by id, centred on 0
            order = np.arange(len(row))
        else:
            into = flows[flows.k == k]
            parent_x = np.array([position[(int(a), int(b))] for a, b in zip(into.k_prev, into.parent, strict=True)])
            weighted = pd.DataFrame({"child": into.child, "w": into.n_cells, "wx": into.n_cells * parent_x})
            sums = weighted.groupby("child").sum()
            barycentre = (sums.wx / sums.w).reindex(row.cluster).to_numpy()
            order = np.lexsort((row.cluster.to_numpy(), barycentre))
            targets = barycentre[order]
        placed = _spread(targets, row.diameter.to_numpy()[order], sizes.gap)
        index = row.index.to_numpy()[order]
        x[index] = placed
        for i, px in zip(index, placed, strict=True):
            position[(int(k), int(nodes.cluster[i]))] = float(px)
    return x


def _new_figure(width: float, height: float) -> tuple[Any, Any, Any]:
    """A figure with the tree Axes (``width`` x ``height`` points, shrunk to fit the maximum) and a colour bar Axes."""
    import matplotlib.pyplot as plt

    left, right, top, bottom = MARGINS
    max_w, max_h = MAX_FIGSIZE[0] * 72 - left - right, MAX_FIGSIZE[1] * 72 - top - bottom
    shrink = min(1.0, max_w / width, max_h / height)
    w, h = max(width * shrink, MIN_AXES_WIDTH), height * shrink
    fig_w, fig_h = w + left + right, h + top + bottom
    fig = plt.figure(figsize=(fig_w / 72, fig_h / 72))
    ax = fig.add_axes((left / fig_w, bottom / fig_h, w / fig_w, h / fig_h))
    cax = fig.add_axes(((left + w + 62) / fig_w, bottom / fig_h + 0.1 * h / fig_h, 10 / fig_w, 0.8 * h / fig_h))
    return fig, ax, cax


def _axes_points(ax: Any) -> tuple[float, float]:
    """Width and height of ``ax`` in points."""
    bbox = ax.get_window_extent().transformed(ax.figure.dpi_scale_trans.inverted())
    return bbox.width * 72, bbox.height * 72


def _text_color(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads better on ``rgba`` drawn over white."""
    alpha = rgba[3]
    r, g, b = (alpha * c + 1 - alpha for c in rgba[:3])
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def _draw_edges(
    ax: Any, nodes: pd.DataFrame, flows: pd.DataFrame, consistent: Mapping[int, bool], min_fraction: float, scale: float
) -> None:
    """One ``LineCollection`` per pair of consecutive counts, centre to centre."""
    from matplotlib.collections import LineCollection

    x_of = {(int(k), int(c)): x for k, c, x in zip(nodes.k, nodes.cluster, nodes.x, strict=True)}
    for (k_prev, k), part in flows.groupby(["k_prev", "k"], sort=True):
        shown = part[part.fraction_of_child >= min_fraction]
        fade = 1.0 if consistent[int(k_prev)] and consistent[int(k)] else FADED_ALPHA
        frac = shown.fraction_of_child.to_numpy()
        segments = [
            [(x_of[(int(k_prev), int(p))], k_prev), (x_of[(int(k), int(c))], k)]
            for p, c in zip(shown.parent, shown.child, strict=True)
        ]
        colors = np.zeros((len(frac), 4))
        colors[:, :3] = 0.2
        colors[:, 3] = (0.25 + 0.65 * frac) * fade
        edges = LineCollection(segments, colors=colors, linewidths=(0.5 + 3.5 * frac) * scale, zorder=1)
        edges.set_gid(f"edges:{int(k_prev)}-{int(k)}")
        ax.add_collection(edges, autolim=False)


def _draw_nodes(
    ax: Any, nodes: pd.DataFrame, consistent: Mapping[int, bool], cmap: Any, norm: Any, scale: float, sizes: _Sizes
) -> None:
    """One circle per node and, where it fits, its id inside."""
    from matplotlib.collections import CircleCollection

    for row in nodes.itertuples():
        strong = consistent[int(row.k)]
        face = (*cmap(norm(row.mean_mei))[:3], 1.0 if strong else FADED_ALPHA)
        diameter = row.diameter * scale
        node = CircleCollection(
            [np.pi * diameter**2 / 4],  # sizes are areas in points squared
            offsets=[(row.x, row.k)],
            offset_transform=ax.transData,
            facecolors=[face],
            edgecolors=["0.15" if strong else "0.6"],
            linewidths=0.8 * scale,
            zorder=2,
        )
        node.set_gid(f"node:{int(row.k)}:{int(row.cluster)}")
        ax.add_collection(node, autolim=False)
        text = str(int(row.cluster))
        font = min(sizes.font * scale, 0.9 * diameter / (0.64 * len(text)))
        if font >= sizes.min_font:
            ax.text(
                row.x,
                row.k,
                text,
                ha="center",
                va="center_baseline",
                fontsize=font,
                color=_text_color(face),
                alpha=1.0 if strong else 0.75,
                zorder=3,
                gid=f"label:{int(row.k)}:{int(row.cluster)}",
            )


def _decorate(
    ax: Any, ks: list[int], ic: Mapping[int, float], consistent: Mapping[int, bool], title: str | None
) -> None:
    """Count ticks on the left (consistent ones bold), IC ticks on the right, no x axis."""
    ax.set_yticks(ks, [str(k) for k in ks])
    for label, k in zip(ax.get_yticklabels(), ks, strict=True):
        label.set_color(CONSISTENT_COLOR if consistent[k] else INCONSISTENT_COLOR)
        label.set_fontweight("bold" if consistent[k] else "normal")
    ax.set_ylabel("Number of clusters (k)")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    right = ax.secondary_yaxis("right")
    right.set_yticks(ks, [f"{ic[k]:.3f}" for k in ks])
    for label, k in zip(right.get_yticklabels(), ks, strict=True):
        label.set_color("0.15" if consistent[k] else INCONSISTENT_COLOR)
    right.set_ylabel("IC (median bootstrap)")
    right.spines["right"].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11)


def _size_refs(n_max: int) -> list[int]:
    """Round cell counts for the size legend: the powers of ten below a third of ``n_max``, and ``n_max``."""
    powers = [10**e for e in range(1, 7) if 10**e <= n_max / 3]
    return [*powers[-2:], n_max]


def _legend(ax: Any, nodes: pd.DataFrame, min_fraction: float, scale: float, sizes: _Sizes) -> None:
    """Two rows below the tree: node sizes; row styles and edges."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import offset_copy

    n_max = int(nodes.n_cells.max())
    biggest = sizes.d_max * scale
    marker = {"marker": "o", "linestyle": "none", "markeredgecolor": "0.15"}
    size_handles = [
        Line2D(
            [], [], markersize=_diameter(n, n_max, sizes) * scale, markerfacecolor="0.8", label=f"{n} cells", **marker
        )
        for n in _size_refs(n_max)
    ]
    square = {"marker": "s", "linestyle": "none", "markersize": 8}
    style_handles = [
        Line2D([], [], markerfacecolor="0.35", markeredgecolor="0.15", label="consistent k", **square),
        Line2D(
            [],
            [],
            markerfacecolor=(0.35, 0.35, 0.35, FADED_ALPHA),
            markeredgecolor="0.6",
            label="inconsistent k",
            **square,
        ),
        Line2D(
            [],
            [],
            color="0.2",
            linewidth=2.5,
            label=f"edge: share of a cluster's cells\nfrom the cluster above (≥ {min_fraction:.0%})",
        ),
    ]
    common = {"loc": "upper center", "fontsize": 7.5, "frameon": False, "borderaxespad": 0.0, "columnspacing": 1.2}
    first = ax.legend(
        handles=size_handles,
        ncol=len(size_handles),
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=offset_copy(ax.transAxes, fig=ax.figure, y=-6, units="points"),
        handlelength=biggest / 7.5,
        handleheight=biggest / 7.5,
        **common,
    )
    ax.add_artist(first)
    ax.legend(
        handles=style_handles,
        ncol=len(style_handles),
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=offset_copy(ax.transAxes, fig=ax.figure, y=-14 - biggest, units="points"),
        **common,
    )


def _diameter(n_cells: Any, n_max: int, sizes: _Sizes) -> Any:
    """Node diameter in points: grows with the square root of the cells (area proportional above the minimum)."""
    return sizes.d_min + (sizes.d_max - sizes.d_min) * np.sqrt(np.asarray(n_cells) / max(n_max, 1))


def _check_inputs(
    aligned_labels: Mapping[int, Any], ic: Mapping[int, float], consistent: Mapping[int, bool]
) -> list[int]:
    """The counts, sorted; every one needs an IC and a consistent flag."""
    ks = sorted(int(k) for k in aligned_labels)
    if not ks:
        raise ValueError("There is no cluster count to draw: aligned_labels is empty.")
    missing = [k for k in ks if k not in ic or k not in consistent]
    if missing:
        raise ValueError(f"ic and consistent need a value for every count; missing for k={missing}.")
    return ks


def draw_tree(
    aligned_labels: Mapping[int, np.ndarray],
    mei: Mapping[int, np.ndarray],
    ic: Mapping[int, float],
    consistent: Mapping[int, bool],
    *,
    ax: Any = None,
    min_fraction: float = MIN_EDGE_FRACTION,
    cmap: str = "RdYlBu",
    vmin: float | None = None,
    title: str | None = "Clusters across cluster counts",
    legend: bool = True,
) -> Any:
    """Draw the tree of clusters across cluster counts on a matplotlib Axes.

    Parameters
    ----------
    aligned_labels : mapping of int to array of int
        Count k -> one aligned cluster id per cell (:func:`scice._align.align_labels`).
        The ids are the node labels.
    mei : mapping of int to array of float
        Count k -> per-cell consistency (``ClusterResult.mei``); a node's colour
        is the mean over its cells.
    ic : mapping of int to float
        Count k -> IC, written on the right axis.
    consistent : mapping of int to bool
        Count k -> whether k is consistent: consistent rows (nodes, the edges
        into them, the tick label) are drawn strong, the others faded.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into. By default a new figure is sized to the tree (at most
        :data:`MAX_FIGSIZE`), with a colour bar on the right.
    min_fraction : float, default=0.1
        An edge is drawn only when at least this fraction of the child's cells
        come from the parent (:data:`MIN_EDGE_FRACTION`), so a few cells
        changing sides do not clutter the tree. Its width and opacity grow with
        that fraction.
    cmap : str, default="RdYlBu"
        Colormap of the mean per-cell consistency (blue: consistent cells).
    vmin : float, optional
        Low end of the colour scale (high end 1); default: the lowest mean,
        rounded down to 0.05, and at most 0.9.
    title : str or None, default="Clusters across cluster counts"
        Axes title.
    legend : bool, default=True
        Add a legend of node sizes, row styles and edges below the tree.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes (``ax.figure`` is its figure). Nodes are one ``PathCollection``
        each with gid ``"node:<k>:<id>"``, their labels ``Text`` with gid
        ``"label:<k>:<id>"``, the edges between two rows one ``LineCollection``
        with gid ``"edges:<k_prev>-<k>"``.

    Raises
    ------
    ValueError
        If there is no count, or ``mei``, ``ic`` or ``consistent`` lacks one.

    Notes
    -----
    Sizes are nominal points: node diameters 12 to 26 points, growing with the
    square root of the cell count, at least 4 points apart within a row, rows
    34 points apart per smallest step of k. On an Axes smaller than that, every
    size shrinks by one factor and labels below 4.5 points are left out.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    ks = _check_inputs(aligned_labels, ic, consistent)
    consistent = {int(k): bool(v) for k, v in consistent.items()}
    sizes = _Sizes()
    nodes = _node_table(aligned_labels, mei)
    nodes["diameter"] = _diameter(nodes.n_cells, int(nodes.n_cells.max()), sizes)
    flows = label_flows(aligned_labels)
    nodes["x"] = _layout(nodes, flows, sizes)

    half = nodes.diameter / 2 + sizes.gap
    left, right = float((nodes.x - half).min()), float((nodes.x + half).max())
    steps = np.diff(ks)
    per_k = sizes.pitch / (steps.min() if steps.size else 1)
    pad_k = (sizes.d_max / 2 + sizes.gap) / per_k
    width, height = right - left, (ks[-1] - ks[0] + 2 * pad_k) * per_k

    low = float(nodes.mean_mei.min())
    norm = Normalize(vmin=min(0.9, np.floor(low * 20) / 20) if vmin is None else float(vmin), vmax=1.0)
    colormap = plt.get_cmap(cmap)
    if ax is None:
        fig, ax, cax = _new_figure(width, height)
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), cax=cax)
    else:
        fig = ax.figure
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), ax=ax, shrink=0.8, pad=0.12)
        if fig.get_layout_engine() is not None:
            fig.draw_without_rendering()
    bar.set_label("Mean per-cell consistency (MEI)")
    ax.set_ylim(ks[-1] + pad_k, ks[0] - pad_k)
    w_pts, h_pts = _axes_points(ax)
    scale = min(1.0, w_pts / width, h_pts / height)
    extra = max(0.0, w_pts - width) / 2  # a wider Axes keeps the nominal spacing, centred
    ax.set_xlim(left - extra, right + extra)

    _draw_edges(ax, nodes, flows, consistent, min_fraction, scale)
    _draw_nodes(ax, nodes, consistent, colormap, norm, scale, sizes)
    _decorate(ax, ks, ic, consistent, title)
    if legend:
        _legend(ax, nodes, min_fraction, scale, sizes)
    return ax
