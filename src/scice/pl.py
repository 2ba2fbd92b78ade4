"""Plots of scICE results (``scice.pl``), after scanpy's ``sc.pl``.

- :func:`ic`: the bootstrap IC of every cluster count, on a numeric count axis;
- :func:`tree`: a clustree-style tree of the clusters across counts;
- :func:`stability`: per-cell consistency on an embedding, with the clusters.

They read an AnnData (results in ``adata.uns[key]``, as written by
:func:`scice.tl.scice`) and follow scanpy's plotting contract (``ax``,
``show``, ``save``, ``return_fig``). :func:`plot_ic` and :func:`plot_stability`
are the original spellings: same drawings, returning ``(fig, ax)``. matplotlib
is imported on first use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ._align import align_layers
from ._anndata import check_cells_match, is_anndata, results_from
from ._labels import check_threshold, isolated_cells, resolve_threshold
from ._params import FRONT_PARAMS, FRONT_TEXT, doc_params
from ._tree import MIN_EDGE_FRACTION, draw_tree, tree_inputs

__all__ = ["ic", "plot_ic", "plot_stability", "stability", "tree"]

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


def _figdir() -> Path:
    scanpy = sys.modules.get("scanpy")
    if scanpy is not None:
        return Path(scanpy.settings.figdir)
    return Path("figures")


def _save_path(save: Any, name: str) -> Path | None:
    """Where ``save`` asks the figure to go (scanpy's rule for ``True`` and strings), or ``None``."""
    if save is None or save is False:
        return None
    if isinstance(save, os.PathLike):
        return Path(save)
    if save is True:
        suffix = ".png"
    elif isinstance(save, str):
        suffix = save if Path(save).suffix else f"{save}.png"
    else:
        raise TypeError(f"save must be a bool, a str (appended to scice_{name}) or a path, got {save!r}.")
    return _figdir() / f"scice_{name}{suffix}"


def _finish(fig: Any, ax: Any, name: str, show: bool | None, save: Any, return_fig: bool) -> Any:
    """Save if asked, then return the Figure, the Axes or (after showing) ``None``, as scanpy does."""
    import matplotlib.pyplot as plt

    path = _save_path(save, name)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    if return_fig:
        return fig
    if show is None:
        scanpy = sys.modules.get("scanpy")
        show = bool(scanpy.settings.autoshow) if scanpy is not None else True
    if not show:
        return ax
    plt.show()
    return None


def _gaps(results: Any) -> dict[int, str]:
    """Requested cluster counts without a result: count -> reason."""
    present = set(results.n_cluster.tolist())
    return {int(k): str(r) for k, r in sorted(results.uncovered_targets.items()) if int(k) not in present}


def _failed_resolutions(results: Any) -> list[str]:
    """Manual-mode resolutions that gave no result, as ``"γ=0.5 (reason)"``."""
    table = results.resolution_diagnostics
    if table is None or table.empty or "status" not in table:
        return []
    failed = table[table["status"] == "no_result"]
    return [f"γ={_format_gamma(float(g))} ({r})" for g, r in zip(failed["gamma"], failed["reason"], strict=True)]


def _draw_ic(
    results: Any,
    threshold: float,
    show_gamma: bool,
    ax: Any,
    show_points: bool,
    title: str | None,
    figsize: tuple[float, float] | None,
) -> tuple[Any, Any]:
    """The IC plot on a numeric count axis; ``(fig, ax)``."""
    clusters = [c for c in results.clusters if c.ic_vec.size and np.isfinite(c.ic)]
    gaps = _gaps(results)
    ks = [int(c.n_cluster) for c in clusters]
    ticks = sorted(set(ks) | set(gaps))
    if figsize is None:
        span = (ticks[-1] - ticks[0] + 1) if ticks else 1
        figsize = (max(6.4, 0.6 * min(span, 3 * len(ticks) + 1) + 2.4), 4.6)
    fig, ax = _new_axes(ax, figsize)
    notes = []
    if gaps:
        notes.append(f"Targets without a result: {', '.join(map(str, gaps))}")
    failed = _failed_resolutions(results)
    if failed:
        notes.append(f"Resolutions without a result: {'; '.join(failed)}")
    note = "\n".join(notes) or None
    if not clusters:
        _draw_nothing_evaluated(ax, note, title)
        return fig, ax

    consistent = {k: bool(c.ic < threshold) for k, c in zip(ks, clusters, strict=True)}
    colors = [_status_color(consistent[k], threshold) for k in ks]
    _draw_boxes(ax, clusters, ks, colors, show_points)
    if np.isfinite(threshold):
        ax.axhline(threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.2, zorder=4)
    values = np.concatenate([c.ic_vec for c in clusters]).astype(float)
    _style_ic_axes(ax, values, threshold, consistent, ticks)
    _draw_gap_reasons(ax, gaps)
    if show_gamma:
        _draw_gamma_axis(ax, clusters, ks)
    if np.isfinite(threshold):
        _draw_status_legend(ax, threshold, bool(gaps))
    full_title = title or ""
    if note:
        full_title = f"{full_title}\n{note}" if full_title else note
    if full_title:
        ax.set_title(full_title, fontsize=11, pad=8)
    return fig, ax


def _draw_boxes(ax: Any, clusters: list, ks: list[int], colors: list[str], show_points: bool) -> None:
    """One box of bootstrap ICs per count at x = k, its jittered points, and a diamond at the median."""
    boxes = ax.boxplot(
        [np.asarray(c.ic_vec, dtype=float) for c in clusters],
        positions=ks,
        widths=0.6,
        patch_artist=True,
        showfliers=not show_points,
        flierprops={"markersize": 3, "markerfacecolor": "0.3", "markeredgecolor": "none"},
        medianprops={"color": "0.2", "linewidth": 1.0},
        whiskerprops={"color": "0.2", "linewidth": 1.0},
        capprops={"color": "0.2", "linewidth": 1.0},
        manage_ticks=False,
        zorder=2,
    )
    for patch, color in zip(boxes["boxes"], colors, strict=True):
        patch.set_facecolor(color)
        patch.set_edgecolor("0.2")
        patch.set_linewidth(1.0)
    if show_points:
        rng = np.random.default_rng(0)  # the same jitter on every call
        x = np.concatenate([np.full(c.ic_vec.size, k, dtype=float) for k, c in zip(ks, clusters, strict=True)])
        y = np.concatenate([c.ic_vec for c in clusters]).astype(float)
        points = ax.scatter(x + rng.uniform(-0.18, 0.18, x.size), y, s=4.8, color="0.15", alpha=0.35, linewidths=0)
        points.set_zorder(3)
        points.set_gid("ic:points")
    # Median markers keep the status colour visible when a box collapses to a line (IC = 1 throughout).
    diamonds = ax.scatter(
        ks, [c.ic for c in clusters], marker="D", s=30, zorder=5, linewidths=0.8, edgecolors="0.15", c=colors
    )
    diamonds.set_gid("ic:medians")


def _draw_gap_reasons(ax: Any, gaps: dict[int, str]) -> None:
    """A hatched band at each count without a result, its reason written upright inside."""
    import textwrap

    for k, reason in gaps.items():
        ax.axvspan(
            k - 0.4, k + 0.4, facecolor="none", edgecolor="0.75", hatch="///", linewidth=0, zorder=1, gid=f"gap:{k}"
        )
        ax.text(
            k,
            0.5,
            textwrap.fill(reason or "no result", 34),
            transform=ax.get_xaxis_transform(),
            rotation=90,
            ha="center",
            va="center",
            fontsize=6.5,
            color="0.3",
            linespacing=1.0,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.5},
            zorder=6,
            gid=f"gap_reason:{k}",
        )


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
    """Bootstrap IC distribution per cluster count; returns ``(fig, ax)``.

    The drawing of :func:`ic` with the original signature and return value:
    ``threshold=None`` draws no threshold line, and ``(fig, ax)`` is returned
    whatever happens.

    Parameters
    ----------
    data : AnnData, dict or SCICEResults
        AnnData with results in ``adata.uns[key]``, the legacy result dictionary,
        or :class:`~scice.SCICEResults`.
    threshold : float or None, default=1.005
        IC threshold; counts with median IC strictly below it are consistent.
        ``None`` or ``inf`` draws no threshold line and no
        consistent/inconsistent colouring.
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
    return _draw_ic(results, check_threshold(threshold), show_gamma, ax, show_points, title, figsize)


@doc_params(**FRONT_PARAMS, **FRONT_TEXT)
def ic(
    adata: Any,
    key: str = "scICE",
    threshold: float | None = None,
    *,
    show_gamma: bool = True,
    show_points: bool = True,
    title: str | None = "Clustering consistency",
    figsize: tuple[float, float] | None = None,
    ax: Any = None,
    show: bool | None = None,
    save: Any = None,
    return_fig: bool = False,
):
    """Bootstrap IC distribution per cluster count, on a numeric count axis.

    One box per returned cluster count at x = k summarising its bootstrap ICs
    (``ic_vec``); a diamond marks the median (the reported ``ic``). Counts whose
    IC is below ``threshold`` are consistent: coloured, with a bold tick label;
    the threshold is a dashed line. A requested count without a result is a
    hatched gap at its x, with the reason written in it. With ``show_gamma``
    the Leiden resolution of each count is written on a second x axis on top.

    Parameters
    ----------
    {results_adata}
    {key}
    threshold : float, optional
        Counts with IC strictly below it are consistent. ``None``: the
        ``ic_threshold`` the results were computed with; ``inf`` draws no
        threshold line and no consistent/inconsistent colouring.
    show_gamma : bool, default=True
        Write each count's resolution (gamma) on a top axis.
    show_points : bool, default=True
        Overlay the individual bootstrap ICs as jittered points.
    title : str or None, default="Clustering consistency"
        Axes title (``None`` for none).
    figsize : (float, float), optional
        Size of a new figure; by default it grows with the number of counts.
    {ax}
    {show}
    {save}
    {return_fig}

    Returns
    -------
    {returns_plot}

    Examples
    --------
    >>> scice.tl.scice(adata, cluster_range=(2, 10))  # doctest: +SKIP
    >>> scice.pl.ic(adata)  # doctest: +SKIP
    """
    results = results_from(adata, key)
    fig, ax = _draw_ic(results, resolve_threshold(threshold, results), show_gamma, ax, show_points, title, figsize)
    return _finish(fig, ax, "ic", show, save, return_fig)


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


def _style_ic_axes(
    ax: Any, values: np.ndarray, threshold: float, consistent: dict[int, bool], ticks: list[int]
) -> None:
    """IC range and tick format, a tick per count (consistent ones coloured), axis labels, grid, spines."""
    from matplotlib.ticker import FormatStrFormatter

    has_threshold = np.isfinite(threshold)
    shown = [threshold] if has_threshold else []
    lo, hi = min([values.min(), 1.0, *shown]), max([values.max(), *shown])
    pad = max(hi - lo, 2e-3) * 0.08
    ax.set_ylim(lo - pad, hi + pad)
    span = hi - lo
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.4f" if span < 0.02 else "%.3f" if span < 0.2 else "%.2f"))
    ax.set_xlim(ticks[0] - 0.7, ticks[-1] + 0.7)
    ax.set_xticks(ticks, [str(k) for k in ticks])
    for label, k in zip(ax.get_xticklabels(), ticks, strict=True):
        if has_threshold and consistent.get(k):
            label.set_color(CONSISTENT_COLOR)
            label.set_fontweight("bold")
        elif k not in consistent:
            label.set_color("0.5")
    ax.set_xlabel("Number of clusters")
    ax.set_ylabel("Inconsistency coefficient (IC)")
    ax.grid(axis="y", color="0.9", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw_gamma_axis(ax: Any, clusters: list, ks: list[int]) -> None:
    """The resolution of each count on a second x axis on top."""
    top = ax.secondary_xaxis("top")
    top.set_xticks(ks, _format_gammas([c.gamma for c in clusters]))
    rotate = len(ks) > 6
    top.tick_params(axis="x", labelsize=8, length=2, labelrotation=45 if rotate else 0)
    if rotate:
        for label in top.get_xticklabels():
            label.set_horizontalalignment("left")
            label.set_rotation_mode("anchor")
    top.set_xlabel("Leiden resolution γ", fontsize=9)
    top.spines["top"].set_visible(False)


def _draw_status_legend(ax: Any, threshold: float, gaps: bool) -> None:
    """The legend below the axes: consistent, inconsistent, threshold line (and the gap band)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

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
    if gaps:
        handles.append(Patch(facecolor="none", edgecolor="0.6", hatch="///", label="no result"))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        handlelength=1.6,
        columnspacing=1.2,
    )


def _basis_label(basis: str) -> str:
    name = basis[2:] if basis.startswith("X_") else basis
    return {"umap": "UMAP", "tsne": "t-SNE", "pca": "PC", "draw_graph_fa": "FA"}.get(name, name)


def _embedding(adata: Any, basis: str) -> np.ndarray:
    """The first two columns of ``adata.obsm`` under ``basis`` or ``"X_" + basis`` (as scanpy reads it)."""
    for name in (basis, f"X_{basis}"):
        if name in adata.obsm:
            return np.asarray(adata.obsm[name])[:, :2]
    raise KeyError(
        f"No embedding adata.obsm[{basis!r}] (available: {sorted(adata.obsm.keys())}). Compute it first, "
        "e.g. sc.pp.neighbors(adata); sc.tl.umap(adata), or pass basis= for another embedding."
    )


def _stability_inputs(adata: Any, key: str, n_cluster: Any, basis: str, caller: str) -> tuple[Any, Any, np.ndarray]:
    """Results, the result of ``n_cluster`` (default: the best) and the embedding."""
    if not is_anndata(adata):
        raise TypeError(f"{caller} needs the AnnData (for its embedding), got {type(adata).__name__}.")
    coords = _embedding(adata, basis)
    results = results_from(adata, key)
    if not results.clusters:
        raise ValueError("The scICE results contain no cluster count to plot.")
    check_cells_match(adata, results, "plot the results on this AnnData")
    if n_cluster is None:
        n_cluster = results.best_cluster
    return results, results[int(n_cluster)], coords


def _draw_stability(
    coords: np.ndarray,
    result: Any,
    ax: Any,
    cmap: str,
    size: float | None,
    vmin: float | None,
    figsize: tuple[float, float],
    basis: str,
) -> tuple[Any, Any]:
    """Cells coloured by the per-cell consistency of ``result``, least consistent on top; ``(fig, ax)``."""
    mei = np.asarray(result.mei, dtype=float)
    fig, ax = _new_axes(ax, figsize)
    order = np.argsort(-mei, kind="stable")
    if size is None:
        size = float(np.clip(12000 / max(len(mei), 1), 1.5, 40))
    low = float(np.nanmin(mei)) if np.isfinite(mei).any() else 0.0
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
    points.set_gid("cells")
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
    """Per-cell consistency (``mei``) of one cluster count on an embedding; returns ``(fig, ax)``.

    Each cell is coloured by its element-centric consistency across the Leiden
    trials of that count (1: every trial put it with the same cells). The least
    consistent cells are drawn on top. :func:`stability` draws the same with
    the cluster labels and isolated cells, under scanpy's plotting contract.

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
    _, result, coords = _stability_inputs(adata, key, n_cluster, basis, "plot_stability")
    return _draw_stability(coords, result, ax, cmap, size, vmin, figsize, basis)


def _draw_cluster_labels(ax: Any, coords: np.ndarray, labels: np.ndarray) -> None:
    """Each cluster's id at the median position of its cells, outlined in white (scanpy's "on data")."""
    import matplotlib.patheffects as pe

    for cluster in np.unique(labels):
        x, y = np.median(coords[labels == cluster], axis=0)
        ax.text(
            x,
            y,
            str(int(cluster)),
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
            color="0.1",
            path_effects=[pe.withStroke(linewidth=3, foreground="white")],
            zorder=5,
            gid=f"cluster_label:{int(cluster)}",
        )


@doc_params(**FRONT_PARAMS, **FRONT_TEXT)
def stability(
    adata: Any,
    k: int | None = None,
    key: str = "scICE",
    basis: str = "umap",
    threshold: float | None = None,
    *,
    labels: bool = True,
    cmap: str = "RdYlBu",
    size: float | None = None,
    vmin: float | None = None,
    figsize: tuple[float, float] = (5.6, 4.6),
    ax: Any = None,
    show: bool | None = None,
    save: Any = None,
    return_fig: bool = False,
):
    """Per-cell consistency of one cluster count on an embedding, with its clusters.

    Each cell is coloured by its per-cell consistency (``mei``: 1 when every
    Leiden trial put it with the same cells), least consistent cells on top.
    Each cluster's id is written at the median position of its cells: the ids
    aligned across counts, the categories of ``obs[f"{key}_k{k}"]`` for a
    consistent count. Cells without an edge in the graph (isolated: Leiden
    cannot place them) are marked with a black cross.

    Parameters
    ----------
    adata : AnnData
        With results in ``adata.uns[key]`` and the embedding in ``adata.obsm``.
    k : int, optional
        Cluster count to show; default: the best count (the finest consistent one).
    {key}
    basis : str, default="umap"
        Embedding: ``adata.obsm[basis]`` or ``adata.obsm["X_" + basis]``.
    {threshold}
    labels : bool, default=True
        Write the cluster ids at the clusters.
    cmap : str, default="RdYlBu"
        Colormap: consistent cells blue, inconsistent ones red.
    size : float, optional
        Marker size; by default scaled to the number of cells.
    vmin : float, optional
        Low end of the colour scale (default: the smallest value, at most 0.9).
    figsize : (float, float), default=(5.6, 4.6)
        Size of a new figure.
    {ax}
    {show}
    {save}
    {return_fig}

    Returns
    -------
    {returns_plot}

    Raises
    ------
    KeyError
        If the embedding is missing (compute it with ``sc.tl.umap``) or there is
        no result for ``k``.
    ValueError
        If there are no results, or they belong to other cells.
    """
    results, result, coords = _stability_inputs(adata, key, k, basis, "scice.pl.stability")
    fig, ax = _draw_stability(coords, result, ax, cmap, size, vmin, figsize, basis)
    cut = resolve_threshold(threshold, results)
    if not result.ic < cut:
        ax.set_title(f"{ax.get_title()} (inconsistent)", fontsize=11)
    if labels:
        consistent = {c.n_cluster: bool(c.ic < cut) for c in results.clusters}
        aligned = align_layers({c.n_cluster: c.best_labels for c in results.clusters}, consistent)
        _draw_cluster_labels(ax, coords, aligned[result.n_cluster])
    isolated = isolated_cells(results)
    if isolated.any():
        marks = ax.scatter(
            coords[isolated, 0],
            coords[isolated, 1],
            marker="x",
            color="black",
            s=max(16.0, 2 * (size or 12000 / max(len(isolated), 1))),
            linewidths=1.0,
            zorder=4,
            label=f"isolated cells ({int(isolated.sum())}, no edge)",
        )
        marks.set_gid("isolated")
        ax.legend(loc="lower right", fontsize=8, frameon=False, handletextpad=0.3)
    return _finish(fig, ax, "stability", show, save, return_fig)


@doc_params(**FRONT_PARAMS, **FRONT_TEXT)
def tree(
    adata: Any,
    key: str = "scICE",
    threshold: float | None = None,
    *,
    min_fraction: float = MIN_EDGE_FRACTION,
    cmap: str = "RdYlBu",
    title: str | None = "Clusters across cluster counts",
    legend: bool = True,
    ax: Any = None,
    show: bool | None = None,
    save: Any = None,
    return_fig: bool = False,
):
    """A clustree-style tree of the clusters of every returned cluster count.

    One row per count (small k on top), one node per cluster, sized by its
    cells and coloured by its mean per-cell consistency. An edge joins a
    cluster to each cluster of the previous count it takes at least
    ``min_fraction`` of its cells from; its width and opacity grow with that
    fraction. Consistent counts are drawn strong (bold tick, dark outlines),
    inconsistent ones faded; the IC of each count is on the right axis. Node
    labels are the cluster ids aligned across counts: at a consistent count,
    the categories of ``obs[f"{key}_k{k}"]``.

    Parameters
    ----------
    {results_adata}
    {key}
    {threshold}
    min_fraction : float, default=0.1
        Edges carrying a smaller fraction of the child's cells are not drawn.
    cmap : str, default="RdYlBu"
        Colormap of the mean per-cell consistency.
    title : str or None, default="Clusters across cluster counts"
        Axes title.
    legend : bool, default=True
        Add the legend of node sizes, row styles and edges below the tree.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into. By default a new figure is sized to the tree (nodes
        and labels keep a readable size up to about 30 counts x 40 clusters).
    {show}
    {save}
    {return_fig}

    Returns
    -------
    {returns_plot}
        Nodes have gids ``"node:<k>:<id>"``, their labels ``"label:<k>:<id>"``
        and the edges between two counts ``"edges:<k_prev>-<k>"``.

    Raises
    ------
    ValueError
        If there is no cluster count to draw.
    """
    results = results_from(adata, key)
    cut = resolve_threshold(threshold, results)
    if not results.clusters:
        raise ValueError("The scICE results contain no cluster count to draw a tree of.")
    if not 0 <= float(min_fraction) <= 1:
        raise ValueError(f"min_fraction must lie in [0, 1] (a fraction of a cluster's cells), got {min_fraction!r}.")
    ax = draw_tree(**tree_inputs(results, cut), ax=ax, min_fraction=min_fraction, cmap=cmap, title=title, legend=legend)
    return _finish(ax.figure, ax, "tree", show, save, return_fig)
