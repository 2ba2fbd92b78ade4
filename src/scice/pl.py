"""Plots of scICE results: IC per cluster count, per-cell consistency on an embedding.

Both functions take an AnnData (results in ``adata.uns[key]``), the legacy
result dictionary or :class:`~scice.SCICEResults`, draw with matplotlib (and
seaborn) and return ``(fig, ax)``. matplotlib and seaborn are imported on first use.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ._anndata import check_cells_match, is_anndata, results_from

__all__ = ["plot_ic", "plot_stability"]

CONSISTENT_COLOR = "#1b9e77"
INCONSISTENT_COLOR = "#b8b8b8"
NEUTRAL_COLOR = "#6a8caf"
THRESHOLD_COLOR = "#d62728"


def _new_axes(ax: Any, figsize: tuple[float, float]):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def _format_gamma(gamma: float, scientific: bool | None = None) -> str:
    """``4.8e-5`` style (or ``0.02`` style when ``scientific`` is False)."""
    if not np.isfinite(gamma):
        return "NA"
    if scientific is None:
        scientific = not (gamma == 0 or 1e-2 <= abs(gamma) < 1e3)
    if not scientific:
        return f"{gamma:.3g}"
    mantissa, exponent = f"{gamma:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _format_gammas(gammas: list[float]) -> list[str]:
    """One style for all labels of an axis."""
    finite = [abs(g) for g in gammas if np.isfinite(g) and g != 0]
    scientific = bool(finite) and not all(1e-2 <= g < 1e3 for g in finite)
    return [_format_gamma(g, scientific) for g in gammas]


def _check_threshold(threshold: Any) -> float:
    """``threshold`` as a float; ``None`` means no threshold (``inf``)."""
    if threshold is None:
        return float("inf")
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a number (e.g. 1.005) or None, got {threshold!r}.") from None
    if np.isnan(value):
        raise ValueError("threshold is NaN; pass a number such as 1.005, or None for no threshold line.")
    return value


def plot_ic(
    data: Any,
    threshold: float = 1.005,
    show_gamma: bool = True,
    ax: Any = None,
    key: str = "scICE",
    *,
    show_points: bool = True,
    title: str | None = "Clustering consistency",
    figsize: tuple[float, float] | None = None,
):
    """Bootstrap IC distribution per cluster count.

    One box per returned cluster count (x) summarising its bootstrap ICs
    (``ic_vec``, y). Counts whose median IC is below ``threshold`` are consistent
    and drawn in colour; the threshold is a dashed line. With ``show_gamma`` the
    Leiden resolution of each count is written on a second x axis on top. A
    diamond marks each count's median IC (the reported ``ic``); the tick labels
    of consistent counts are coloured too.

    Parameters
    ----------
    data : AnnData, dict or SCICEResults
        AnnData with results in ``adata.uns[key]``, the legacy result dictionary,
        or :class:`~scice.SCICEResults`.
    threshold : float or None, default=1.005
        IC threshold; counts with median IC strictly below it are consistent.
        ``None`` or ``inf`` (the estimator's default ``ic_threshold``) draws no
        threshold line and no consistent/inconsistent colouring.
    show_gamma : bool, default=True
        Annotate each count with its resolution (gamma).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created by default.
    key : str, default="scICE"
        Key of the results in ``adata.uns``.
    show_points : bool, default=True
        Overlay the individual bootstrap ICs as jittered points.
    title : str or None, default="Clustering consistency"
        Axes title (``None`` for none).
    figsize : (float, float), optional
        Size of a new figure; by default it grows with the number of counts.

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes

    Examples
    --------
    >>> fig, ax = scice.plot_ic(adata, threshold=1.005, show_gamma=True)  # doctest: +SKIP
    >>> fig.savefig("scice_ic.png", dpi=150, bbox_inches="tight")  # doctest: +SKIP
    """
    results = results_from(data, key)
    threshold = _check_threshold(threshold)
    clusters = [c for c in results.clusters if c.ic_vec.size and np.isfinite(c.ic)]
    if figsize is None:
        figsize = (max(6.4, 0.6 * len(clusters) + 2.4), 4.6)
    fig, ax = _new_axes(ax, figsize)
    uncovered = sorted(results.uncovered_targets)
    note = f"Targets without a result: {', '.join(map(str, uncovered))}" if uncovered else None
    if not clusters:
        _draw_nothing_evaluated(ax, note, title)
        return fig, ax

    consistent = {str(c.n_cluster): bool(c.ic < threshold) for c in clusters}
    palette = {k: _status_color(ok, threshold) for k, ok in consistent.items()}
    long = pd.DataFrame(
        {
            "k": np.concatenate([[str(c.n_cluster)] * c.ic_vec.size for c in clusters]),
            "ic": np.concatenate([c.ic_vec for c in clusters]).astype(float),
        }
    )
    _draw_distributions(ax, long, clusters, palette, threshold, show_points)
    _style_ic_axes(ax, long["ic"].to_numpy(), threshold, consistent)
    if show_gamma:
        _draw_gamma_axis(ax, clusters)
    if np.isfinite(threshold):
        _draw_status_legend(ax, threshold)
    full_title = title or ""
    if note:
        full_title = f"{full_title}\n{note}" if full_title else note
    if full_title:
        ax.set_title(full_title, fontsize=11, pad=8)
    return fig, ax


def _status_color(consistent: bool, threshold: float) -> str:
    """The colour of a count: consistent or not, or neutral without a threshold."""
    if not np.isfinite(threshold):
        return NEUTRAL_COLOR
    return CONSISTENT_COLOR if consistent else INCONSISTENT_COLOR


def _draw_nothing_evaluated(ax: Any, note: str | None, title: str | None) -> None:
    """The axes of :func:`plot_ic` when no cluster count has a result."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, "No cluster count was evaluated", ha="center", va="center", fontsize=12, transform=ax.transAxes)
    if note:
        ax.text(0.5, 0.38, note, ha="center", va="center", fontsize=9, color="0.35", transform=ax.transAxes)
    if title:
        ax.set_title(title)


def _draw_distributions(
    ax: Any, long: pd.DataFrame, clusters: list, palette: dict[str, str], threshold: float, show_points: bool
) -> None:
    """Boxes of the bootstrap ICs (``long``: one row per IC), their points, the threshold line, the medians."""
    import seaborn as sns

    order = [str(c.n_cluster) for c in clusters]
    with warnings.catch_warnings():
        # seaborn 0.13 passes matplotlib's deprecated ``vert`` to ``bxp`` (matplotlib >= 3.10); not ours to fix.
        warnings.filterwarnings("ignore", message=".*vert: bool was deprecated.*")
        warnings.filterwarnings("ignore", message=".*vert.*parameter.*deprecated.*")
        sns.boxplot(
            data=long,
            x="k",
            y="ic",
            order=order,
            hue="k",
            hue_order=order,
            palette=palette,
            legend=False,
            width=0.6,
            linewidth=1.0,
            fliersize=0 if show_points else 3,
            showfliers=not show_points,
            linecolor="0.2",
            ax=ax,
            zorder=2,
        )
    if show_points:
        sns.stripplot(
            data=long, x="k", y="ic", order=order, color="0.15", size=2.2, alpha=0.35, jitter=0.18, ax=ax, zorder=3
        )
    if np.isfinite(threshold):
        ax.axhline(threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.2, zorder=4)
    # Median markers keep the status colour visible when a box collapses to a line (IC = 1 throughout).
    ax.scatter(
        range(len(clusters)),
        [c.ic for c in clusters],
        marker="D",
        s=30,
        zorder=5,
        linewidths=0.8,
        edgecolors="0.15",
        c=[palette[k] for k in order],
    )


def _style_ic_axes(ax: Any, values: np.ndarray, threshold: float, consistent: dict[str, bool]) -> None:
    """IC range and tick format, coloured labels of consistent counts, axis labels, grid, spines."""
    from matplotlib.ticker import FormatStrFormatter

    has_threshold = np.isfinite(threshold)
    shown = [threshold] if has_threshold else []
    lo, hi = min([values.min(), 1.0, *shown]), max([values.max(), *shown])
    pad = max(hi - lo, 2e-3) * 0.08
    ax.set_ylim(lo - pad, hi + pad)
    span = hi - lo
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.4f" if span < 0.02 else "%.3f" if span < 0.2 else "%.2f"))
    for label in ax.get_xticklabels():
        if has_threshold and consistent.get(label.get_text()):
            label.set_color(CONSISTENT_COLOR)
            label.set_fontweight("bold")
    ax.set_xlabel("Number of clusters")
    ax.set_ylabel("Inconsistency coefficient (IC)")
    ax.grid(axis="y", color="0.9", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw_gamma_axis(ax: Any, clusters: list) -> None:
    """The resolution of each count on a second x axis on top."""
    n = len(clusters)
    top = ax.secondary_xaxis("top")
    top.set_xticks(range(n), _format_gammas([c.gamma for c in clusters]))
    rotate = n > 6
    top.tick_params(axis="x", labelsize=8, length=2, labelrotation=45 if rotate else 0)
    if rotate:
        for label in top.get_xticklabels():
            label.set_horizontalalignment("left")
            label.set_rotation_mode("anchor")
    top.set_xlabel("Leiden resolution γ", fontsize=9)
    top.spines["top"].set_visible(False)


def _draw_status_legend(ax: Any, threshold: float) -> None:
    """The legend below the axes: consistent, inconsistent, threshold line."""
    from matplotlib.lines import Line2D

    def swatch(color: str, label: str) -> Line2D:
        return Line2D(
            [],
            [],
            marker="s",
            markersize=9,
            linestyle="none",
            markerfacecolor=color,
            markeredgecolor="0.2",
            label=label,
        )

    handles = [
        swatch(CONSISTENT_COLOR, f"consistent (median IC < {threshold:g})"),
        swatch(INCONSISTENT_COLOR, f"inconsistent (median IC ≥ {threshold:g})"),
        Line2D([], [], color=THRESHOLD_COLOR, linestyle="--", label=f"threshold = {threshold:g}"),
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=3,
        fontsize=8,
        frameon=False,
        handlelength=1.6,
        columnspacing=1.2,
    )


def _basis_label(basis: str) -> str:
    name = basis[2:] if basis.startswith("X_") else basis
    return {"umap": "UMAP", "tsne": "t-SNE", "pca": "PC", "draw_graph_fa": "FA"}.get(name, name)


def plot_stability(
    adata: Any,
    n_cluster: int | None = None,
    key: str = "scICE",
    basis: str = "X_umap",
    ax: Any = None,
    *,
    cmap: str = "RdYlBu",
    size: float | None = None,
    vmin: float | None = None,
    figsize: tuple[float, float] = (5.6, 4.6),
):
    """Per-cell consistency (``mei``) of one cluster count on an embedding.

    Each cell is coloured by its element-centric consistency across the Leiden
    trials of that count (1: every trial put it with the same cells). The least
    consistent cells are drawn on top.

    Parameters
    ----------
    adata : AnnData
        With results in ``adata.uns[key]`` and coordinates in ``adata.obsm[basis]``.
    n_cluster : int, optional
        Cluster count to show; defaults to the best count (the finest consistent one).
    key : str, default="scICE"
        Key of the results in ``adata.uns``.
    basis : str, default="X_umap"
        Key of the 2-d embedding in ``adata.obsm`` (e.g. ``"X_umap"``, ``"X_tsne"``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created by default.
    cmap : str, default="RdYlBu"
        Colormap; by default consistent cells are blue and inconsistent ones red.
    size : float, optional
        Marker size; by default scaled to the number of cells.
    vmin : float, optional
        Lower end of the colour scale (default: the smallest value, at most 0.9).
    figsize : (float, float), default=(5.6, 4.6)
        Size of a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes

    Raises
    ------
    KeyError
        If ``adata.obsm[basis]`` is missing (compute it with ``sc.tl.umap``) or
        there is no result for ``n_cluster``.
    ValueError
        If there are no results, or they belong to other cells.
    """
    if not is_anndata(adata):
        raise TypeError(f"plot_stability needs the AnnData (for its embedding), got {type(adata).__name__}.")
    if basis not in adata.obsm:
        raise KeyError(
            f"No embedding adata.obsm[{basis!r}] (available: {sorted(adata.obsm.keys())}). Compute it first, "
            "e.g. sc.pp.neighbors(adata); sc.tl.umap(adata), or pass basis= for another embedding."
        )
    results = results_from(adata, key)
    if not results.clusters:
        raise ValueError("The scICE results contain no cluster count to plot.")
    check_cells_match(adata, results, "plot the results on this AnnData")
    if n_cluster is None:
        n_cluster = results.best_cluster
    result = results[int(n_cluster)]
    coords = np.asarray(adata.obsm[basis])[:, :2]
    mei = np.asarray(result.mei, dtype=float)
    fig, ax = _new_axes(ax, figsize)
    order = np.argsort(-mei, kind="stable")
    if size is None:
        size = float(np.clip(12000 / max(len(mei), 1), 1.5, 40))
    low = float(np.nanmin(mei)) if mei.size else 0.0
    vmin = min(low, 0.9) if vmin is None else float(vmin)
    points = ax.scatter(
        coords[order, 0],
        coords[order, 1],
        c=mei[order],
        cmap=cmap,
        vmin=vmin,
        vmax=1.0,
        s=size,
        linewidths=0,
        rasterized=len(mei) > 20000,
    )
    cbar = fig.colorbar(points, ax=ax, shrink=0.8, pad=0.02)
    cbar.set_label("Per-cell consistency (MEI)")
    label = _basis_label(basis)
    ax.set_xlabel(f"{label}1")
    ax.set_ylabel(f"{label}2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"k = {result.n_cluster}, IC = {result.ic:.4f}, γ = {_format_gamma(result.gamma)}", fontsize=11)
    return fig, ax
