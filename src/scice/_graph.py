"""AnnData / sparse matrix -> validated undirected edge list -> igraph.

This module is the one place where user graphs are read and checked. igraph
silently accepts NaN, negative and directed input, so everything is validated
here before a single Leiden call is made.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from ._anndata import is_anndata
from ._warn import warn_from_caller

__all__ = ["GraphData", "graph_from_input", "to_igraph", "weight_scale"]


@dataclass(frozen=True, eq=False)
class GraphData:
    """An undirected weighted graph as flat numpy arrays.

    Each undirected edge is stored once (``source < target``), without self loops.
    Workers receive its arrays (``scice._worker.GraphArrays``) once each.

    Attributes
    ----------
    n_vertices
        Number of vertices (cells).
    sources, targets
        Edge end points, ``int32`` (``int64`` beyond 2**31 vertices).
    weights
        Edge weights, ``float64``, all positive and finite.
    token
        A content hash, used by workers to cache the igraph object they build.
    cell_names
        Observation names when the graph came from an AnnData object.
    """

    n_vertices: int
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    token: str
    cell_names: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_edges(self) -> int:
        return int(self.sources.shape[0])

    @cached_property
    def isolated(self) -> np.ndarray:
        """Cells without any edge (read-only mask): Leiden cannot place them, so their consistency is undefined."""
        degree = np.bincount(self.sources, minlength=self.n_vertices) + np.bincount(
            self.targets, minlength=self.n_vertices
        )
        mask = degree == 0
        mask.setflags(write=False)
        return mask

    def __getstate__(self):
        # Cell names stay in the parent process: workers never need them.
        state = dict(self.__dict__)
        state["cell_names"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def weight_scale(graph: GraphData, objective_function: str) -> float:
    """The graph's weight scale: its largest edge weight.

    Leiden's refinement picks a merge with probability proportional to
    ``exp(delta_quality / beta)``, so ``beta`` is in units of CPM quality, which
    scale with the edge weights: the same ``beta`` on a graph whose weights are
    all multiplied by 1e-3 makes the refinement almost uniformly random. For CPM
    ``beta`` (and the search's absolute ``resolution_tolerance``) are therefore
    multiplied by this scale. A scanpy ``connectivities`` graph has a largest
    weight of exactly 1 (each cell's nearest neighbour), so on it ``beta`` applies
    exactly as given, as in the published method. Modularity is normalised by the
    total weight and needs no factor.
    """
    if objective_function != "CPM" or graph.n_edges == 0:
        return 1.0
    return float(np.max(graph.weights))


def _extract_matrix(data: object, graph_key: str) -> tuple[sp.csr_matrix, np.ndarray | None]:
    if is_anndata(data):
        keys = sorted(map(str, data.obsp.keys()))  # sorted: obsp's own order differs between anndata lines
        if graph_key not in data.obsp:
            available = ", ".join(repr(k) for k in keys) if keys else "none"
            raise KeyError(
                f"Graph key {graph_key!r} not found in adata.obsp (available keys: {available}). "
                "Run scanpy.pp.neighbors(adata) first, or pass graph_key= naming an existing graph."
            )
        matrix = data.obsp[graph_key]
        names = np.asarray(data.obs_names, dtype=object)
    else:
        matrix = data
        names = None
    if sp.issparse(matrix):
        csr = sp.csr_matrix(matrix)
    elif isinstance(matrix, np.ndarray):
        if matrix.ndim != 2:
            raise ValueError(f"The graph must be a 2-D square matrix, got an array with shape {matrix.shape}.")
        csr = sp.csr_matrix(matrix)
    else:
        raise TypeError(
            f"Expected an AnnData object or a square scipy.sparse adjacency matrix, got {type(data).__name__}."
        )
    return csr, names


def graph_from_input(data: object, graph_key: str = "connectivities") -> GraphData:
    """Validate a graph and return it as an upper-triangle edge list.

    Parameters
    ----------
    data
        An AnnData object (the graph is ``data.obsp[graph_key]``) or a square scipy
        sparse (or dense numpy) adjacency matrix.
    graph_key
        Key in ``adata.obsp``.

    Returns
    -------
    GraphData

    Raises
    ------
    KeyError
        ``graph_key`` is not in ``adata.obsp``.
    TypeError
        The input is not a matrix or AnnData, or has a non-numeric dtype.
    ValueError
        The matrix is not square, has fewer than 3 rows, is not symmetric, has NaN,
        infinite or negative entries, or has no edges.
    """
    csr, names = _extract_matrix(data, graph_key)
    n_rows, n_cols = csr.shape
    if n_rows != n_cols:
        raise ValueError(
            f"The graph must be a square cell x cell adjacency matrix, got shape {csr.shape}. "
            "Pass a neighbour graph such as adata.obsp['connectivities']."
        )
    if n_rows < 3:
        raise ValueError(f"The graph has {n_rows} cells; clustering consistency needs at least 3 cells.")
    if not np.issubdtype(csr.dtype, np.number) or np.issubdtype(csr.dtype, np.complexfloating):
        raise TypeError(f"Graph weights must be real numbers, got dtype {csr.dtype}.")
    csr = csr.astype(np.float64, copy=True)
    csr.sum_duplicates()
    if not np.all(np.isfinite(csr.data)):
        n_bad = int(np.count_nonzero(~np.isfinite(csr.data)))
        raise ValueError(
            f"The graph has {n_bad} NaN or infinite weight(s). Clean the matrix (e.g. replace them with 0 "
            "and call .eliminate_zeros()) or rebuild the neighbour graph."
        )
    if np.any(csr.data < 0):
        n_bad = int(np.count_nonzero(csr.data < 0))
        raise ValueError(
            f"The graph has {n_bad} negative weight(s); Leiden needs non-negative edge weights. "
            "Use a similarity graph such as adata.obsp['connectivities'], not distances or correlations."
        )
    csr.eliminate_zeros()
    diff = abs(csr - csr.T)
    if diff.nnz and diff.max() > 1e-8 * max(float(csr.data.max(initial=0.0)), 1.0):
        raise ValueError(
            "The graph is not symmetric: scICE clusters undirected graphs. Symmetrise it first, e.g. "
            "A = A.maximum(A.T) or A = (A + A.T) / 2."
        )
    n_loops = int(np.count_nonzero(csr.diagonal()))
    if n_loops:
        warn_from_caller(f"The graph has {n_loops} self loop(s) on the diagonal; they are ignored.", UserWarning)
    upper = sp.triu(csr, k=1).tocoo()
    if upper.nnz == 0:
        raise ValueError(
            "The graph has no edges between distinct cells, so there is nothing to cluster. "
            "Check that the neighbour graph was computed (scanpy.pp.neighbors)."
        )
    return _edge_arrays(upper, n_rows, names)


def _edge_arrays(upper: sp.coo_matrix, n_rows: int, names: np.ndarray | None) -> GraphData:
    """The upper-triangle edges as sorted, read-only arrays with their content hash."""
    index_dtype = np.int32 if n_rows < np.iinfo(np.int32).max else np.int64
    order = np.lexsort((upper.col, upper.row))
    sources = np.ascontiguousarray(upper.row[order], dtype=index_dtype)
    targets = np.ascontiguousarray(upper.col[order], dtype=index_dtype)
    weights = np.ascontiguousarray(upper.data[order], dtype=np.float64)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.int64(n_rows).tobytes())
    for arr in (sources, targets, weights):
        digest.update(arr.tobytes())
        arr.setflags(write=False)
    return GraphData(
        n_vertices=int(n_rows),
        sources=sources,
        targets=targets,
        weights=weights,
        token=digest.hexdigest(),
        cell_names=names,
    )


def to_igraph(graph: GraphData):
    """Build the undirected weighted ``igraph.Graph`` (weights in the ``"weight"`` attribute)."""
    from ._worker import build_igraph

    return build_igraph(graph.n_vertices, graph.sources, graph.targets, graph.weights)
