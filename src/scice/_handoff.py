"""Hand a scice partition over to scanpy: the ``sc.tl.leiden`` arguments that reproduce it.

scice runs igraph's Leiden on a graph that holds every undirected edge once.
``sc.tl.leiden(flavor="igraph")`` builds its own igraph graph from the
adjacency matrix, and on the scanpy lines up to 1.13 that graph holds every
edge twice, which changes what a CPM resolution means. :func:`leiden_params`
converts a result's resolution for the graph the target scanpy builds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._results import ClusterResult

__all__ = ["leiden_params", "scanpy_edge_multiplicity"]

#: ``scanpy.settings.preset`` value whose graphs hold every edge once (scanpy 1.13).
V2_PREVIEW_PRESET = "scanpy-v2-preview"


def _version_tuple(version: Any) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``"1.12.4"`` or ``"1.13.0a2"``."""
    text = str(version).strip()
    parts = text.split(".")
    try:
        major = int(parts[0])
        minor = int("".join(ch for ch in (parts[1] if len(parts) > 1 else "0") if ch.isdigit()) or 0)
    except ValueError:
        raise ValueError(f"scanpy_version must look like '1.12.4', got {version!r}.") from None
    return major, minor


def _installed_scanpy() -> tuple[str, str | None]:
    """Version of the installed scanpy and its current preset (``None`` before presets existed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("scanpy")
    except PackageNotFoundError:
        raise ImportError(
            "scanpy is not installed; install it (pip install 'scice[scanpy]') or pass scanpy_version= "
            "naming the scanpy that will run sc.tl.leiden."
        ) from None
    import scanpy

    preset = getattr(scanpy.settings, "preset", None)
    return installed, None if preset is None else str(getattr(preset, "value", preset))


def scanpy_edge_multiplicity(scanpy_version: Any, preset: str | None = None) -> int:
    """How many igraph edges ``sc.tl.leiden(flavor="igraph")`` builds for one undirected edge.

    Parameters
    ----------
    scanpy_version : str
        The scanpy version, e.g. ``"1.11.5"``, ``"1.12.4"`` or ``"1.13.0a2"``.
    preset : str, optional
        The value of ``scanpy.settings.preset`` (scanpy 1.13 and newer), e.g.
        ``"scanpy-v1"`` (the default) or ``"scanpy-v2-preview"``.

    Returns
    -------
    int
        2 when scanpy's graph holds each edge twice, 1 when once.

    Notes
    -----
    ``sc.tl.leiden(flavor="igraph")`` builds its graph with
    ``scanpy._utils.get_igraph_from_adjacency(adjacency, directed=False)``. On
    scanpy 1.11 and 1.12 (and on 1.13 with the default ``"scanpy-v1"`` preset)
    that function adds one undirected igraph edge per *stored entry* of the
    adjacency matrix (``adjacency.nonzero()``); a symmetric neighbour graph
    stores each edge as ``(i, j)`` and ``(j, i)``, so the graph is a multigraph
    with two parallel edges of the full weight per pair. With the
    ``"scanpy-v2-preview"`` preset of scanpy 1.13 it is
    ``igraph.Graph.Weighted_Adjacency(coo, mode=ADJ_UNDIRECTED)``, which igraph
    treats as ``"max"``: one edge per pair. scanpy's release note for that
    change says scanpy 2.0 builds every graph this way, so versions from 2.0
    on count as 1.
    """
    major, minor = _version_tuple(scanpy_version)
    if major >= 2:
        return 1
    if preset is not None and str(preset) == V2_PREVIEW_PRESET and (major, minor) >= (1, 13):
        return 1
    return 2


def _check_result(result: Any) -> ClusterResult:
    if not isinstance(result, ClusterResult):
        raise TypeError(f"result must be a scice ClusterResult (e.g. est.results_[k]), got {type(result).__name__}.")
    if not (math.isfinite(result.gamma) and result.gamma > 0):
        raise ValueError(f"The result for k={result.n_cluster} has no usable resolution (gamma={result.gamma}).")
    return result


def leiden_params(
    result: ClusterResult,
    params: Mapping[str, Any],
    scanpy_version: str | None = None,
    *,
    preset: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``sc.tl.leiden`` that reproduce one scice partition.

    ``sc.tl.leiden(adata, **leiden_params(results[k], results.params))`` runs the
    same Leiden (igraph's ``community_leiden``) with the same objective,
    resolution, ``beta`` and number of iterations on the same graph, so at a
    consistent count (IC near 1, where every seed gives the same partition) it
    gives scice's ``best_labels`` up to the ids. Add ``key_added=`` as usual.

    Parameters
    ----------
    result : ClusterResult
        The result of one cluster count, ``results[k]``.
    params : mapping
        The run's parameters, :attr:`SCICEResults.params <scice.SCICEResults.params>`:
        ``objective_function`` (default ``"CPM"``), ``beta`` (omitted from the
        output when missing or NaN: igraph's default then applies) and
        ``graph_key`` (the ``adata.obsp`` key; omitted when empty, i.e. a fit
        on a matrix: pass that matrix as ``adjacency=``).
    scanpy_version : str, optional
        The scanpy that will run ``sc.tl.leiden``; default: the installed one.
    preset : str, optional
        Its ``scanpy.settings.preset`` (scanpy 1.13 and newer); default: the
        installed scanpy's current preset when ``scanpy_version`` is not given,
        otherwise ``"scanpy-v1"``.

    Returns
    -------
    dict
        ``flavor="igraph"``, ``objective_function``, ``resolution``, ``beta``,
        ``n_iterations`` (:attr:`ClusterResult.n_iter`), ``directed=False``,
        ``use_weights=True``, ``obsp`` and a seed (``random_state=0``; ``rng=0``
        from scanpy 1.13 on, where ``rng`` replaces it).

    Raises
    ------
    TypeError
        If ``result`` is not a :class:`~scice.ClusterResult`.
    ValueError
        If the objective is unknown, the resolution is not positive, or
        ``scanpy_version`` cannot be read.
    ImportError
        If ``scanpy_version`` is not given and scanpy is not installed.

    Notes
    -----
    **Resolution.** scice's graph holds every undirected edge once (the upper
    triangle of ``adata.obsp[graph_key]``). scanpy's holds it twice on scanpy
    1.11 and 1.12, and on 1.13 unless the ``"scanpy-v2-preview"`` preset is
    active (see :func:`scanpy_edge_multiplicity`; scanpy issue 4099). igraph's
    CPM quality is ``sum_ij (A_ij - gamma n_i n_j) delta(c_i, c_j)``: doubling
    every edge doubles ``A`` and leaves the node weights ``n`` (1 per cell), so
    the same partition is optimal at twice the resolution: ``resolution =
    multiplicity * gamma``. Modularity, ``sum_ij (A_ij - gamma k_i k_j / 2m)``,
    is unchanged when ``A``, the degrees ``k`` and ``m`` all double, so its
    resolution passes as it is.

    **Other arguments.** With ``flavor="igraph"``, ``sc.tl.leiden`` calls
    ``g.community_leiden(**clustering_args)`` after setting
    ``clustering_args["n_iterations"] = n_iterations``, ``"weights" =
    "weight"`` (``use_weights=True``) and ``"resolution"``; every further
    keyword (``objective_function``, ``beta``) passes through unchanged, and
    ``objective_function`` would otherwise default to ``"modularity"``.
    ``directed`` must be false for igraph. The seed goes to
    ``igraph.set_random_number_generator`` through scanpy's own generator, so
    it cannot replay scice's per-trial seeds; at a consistent count it does
    not matter, at an inconsistent one another seed can give another partition.
    ``n_iterations`` is the cumulative iterations behind the result (initial
    run plus refinement); scice merges clusters smaller than
    ``min_cluster_size`` into ``best_labels``, which scanpy does not, so a few
    singletons may differ.
    """
    result = _check_result(result)
    objective = str(params.get("objective_function", "CPM"))
    if objective.lower() not in ("cpm", "modularity"):
        raise ValueError(f"objective_function must be 'CPM' or 'modularity', got {objective!r}.")
    if scanpy_version is None:
        scanpy_version, installed_preset = _installed_scanpy()
        preset = installed_preset if preset is None else preset
    multiplicity = scanpy_edge_multiplicity(scanpy_version, preset)
    factor = multiplicity if objective.lower() == "cpm" else 1
    kwargs: dict[str, Any] = {
        "flavor": "igraph",
        "objective_function": objective,
        "resolution": float(result.gamma) * factor,
        "n_iterations": int(result.n_iter),
        "directed": False,
        "use_weights": True,
    }
    beta = params.get("beta")
    if beta is not None and math.isfinite(float(beta)):
        kwargs["beta"] = float(beta)
    graph_key = params.get("graph_key") or ""
    if graph_key:
        kwargs["obsp"] = str(graph_key)
    seed_name = "rng" if _version_tuple(scanpy_version) >= (1, 13) else "random_state"
    kwargs[seed_name] = 0
    return kwargs
