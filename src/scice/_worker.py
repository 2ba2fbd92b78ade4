"""What a worker process runs: chunks of seeded Leiden trials on a graph it keeps.

Of the third-party packages this module imports only numpy and igraph (and ``scice/__init__`` loads nothing
eagerly), so a fresh worker is ready in about a second instead of the ~4 s that
importing scikit-learn, pandas and anndata would cost.

A :class:`Chunk` is the one record that crosses the process boundary: the
arguments of :func:`run_trials`, by name. The graph travels only to workers
that lack it: a chunk names the graph by its token and carries no edges; a
worker that does not hold that graph answers ``None`` and the parent sends the
chunk again, about once per worker with the edge arrays (see
:meth:`scice._leiden.TrialRunner._resend_with_graph`). This
needs nothing from the backend, so it works the same on loky, dask or ray
workers.

A trial seeds igraph's generator itself (:func:`seeded_igraph_rng`) and
restores the default afterwards. igraph's generator is shared per thread, so
this is the only way to make a trial depend on its seed alone, wherever and in
whatever order it runs.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from ._memory import _EDGE_BYTES

#: Set in the environment of the worker processes scice starts itself (its loky pool).
WORKER_ENV = {"SCICE_WORKER": "1"}

if os.environ.get("SCICE_WORKER") == "1" and "matplotlib" not in sys.modules:
    # igraph imports matplotlib.pyplot for its optional plotting when matplotlib is
    # installed: about half a second of every new worker's start, for a process
    # that only runs Leiden. Hide it while igraph loads (igraph then uses its
    # "matplotlib is not installed" stand-in); matplotlib itself stays importable.
    sys.modules["matplotlib"] = None  # type: ignore[assignment]
    try:
        import igraph as ig
    finally:
        del sys.modules["matplotlib"]
else:
    import igraph as ig

__all__ = [
    "Chunk",
    "GraphArrays",
    "WORKER_ENV",
    "build_igraph",
    "run_trials",
    "held_graphs",
    "call_indexed",
    "seeded_igraph_rng",
]


class GraphArrays(NamedTuple):
    """An undirected weighted graph as arrays, each edge once."""

    n_vertices: int
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


class Chunk(NamedTuple):
    """The arguments of one :func:`run_trials` call: consecutive trials of one trial set.

    It is a tuple, so a layout runs it as ``run_trials(*chunk)`` and pickles it
    like any tuple. ``arrays`` is ``None`` unless the chunk is resent to a worker
    that lacks the graph (``chunk._replace(arrays=...)``).
    """

    token: str
    arrays: GraphArrays | None
    objective_function: str
    gamma: float
    beta: float
    n_iterations: int
    seeds: np.ndarray
    initial: np.ndarray | None = None


# token -> igraph.Graph, per process. Two graphs at most: a notebook that fits
# two datasets alternately does not rebuild them every time.
_GRAPHS: OrderedDict[str, ig.Graph] = OrderedDict()
_MAX_GRAPHS = 2


def build_igraph(n_vertices: int, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> ig.Graph:
    """The undirected weighted ``igraph.Graph`` (weights in the ``"weight"`` attribute)."""
    edges = np.column_stack([sources, targets]).astype(np.int64, copy=False)
    g = ig.Graph(n=int(n_vertices), edges=edges, directed=False)
    g.es["weight"] = np.asarray(weights, dtype=np.float64).tolist()
    return g


def call_indexed(func, index: int, args: tuple) -> tuple[int, object]:
    """Run ``func(*args)`` and return it with its position (layouts that collect results as they finish).

    It lives here, in the light module, so unpickling it on a worker imports nothing heavy.
    """
    return index, func(*args)


def held_graphs() -> list[str]:
    """Tokens of the graphs this process holds (for tests and diagnostics)."""
    return list(_GRAPHS)


@contextmanager
def seeded_igraph_rng(seed: int) -> Iterator[None]:
    """Seed igraph's generator with ``random.Random(seed)`` for the block; restore the default after.

    Like scanpy's ``_set_igraph_rng``: every Leiden trial runs inside one, so
    its labels depend on its seed alone.
    """
    ig.set_random_number_generator(random.Random(int(seed)))
    try:
        yield
    finally:
        ig.set_random_number_generator(random)


#: Memory a held graph may add to a worker without loky taking it for a leak: twice
#: the memory model's bytes per edge (scice's arrays, igraph's copy with its weight
#: attribute and one Leiden call), at least loky's own allowance.
GRAPH_ALLOWANCE_PER_EDGE = 2 * _EDGE_BYTES
_LOKY_ALLOWANCE = int(3e8)


def allow_graph_memory(n_edges: int) -> None:
    """Tell loky's worker loop (when this is a loky worker) that a held graph is not a leak.

    loky measures a worker's memory after its first call (scice's pool warm-up)
    and restarts a worker that grew by more than ``_MAX_MEMORY_LEAK_SIZE``
    (300 MB) beyond it. A graph of a few million edges is more than that, so
    without this every chunk on a large graph would end with a restart and the
    graph would be sent and built again. The allowance grows by
    :data:`GRAPH_ALLOWANCE_PER_EDGE` per edge of every graph built here.
    """
    loop = sys.modules.get("joblib.externals.loky.process_executor")
    current = getattr(loop, "_MAX_MEMORY_LEAK_SIZE", None)
    if isinstance(current, int):
        loop._MAX_MEMORY_LEAK_SIZE = current + max(_LOKY_ALLOWANCE, GRAPH_ALLOWANCE_PER_EDGE * int(n_edges))


def _graph(token: str, arrays: GraphArrays | None) -> ig.Graph | None:
    g = _GRAPHS.get(token)
    if g is not None:
        _GRAPHS.move_to_end(token)
        return g
    if arrays is None:
        return None
    allow_graph_memory(len(arrays.sources))
    g = build_igraph(*arrays)
    _GRAPHS[token] = g
    while len(_GRAPHS) > _MAX_GRAPHS:
        _GRAPHS.popitem(last=False)
    return g


def run_trials(
    token: str,
    arrays: GraphArrays | None,
    objective_function: str,
    gamma: float,
    beta: float,
    n_iterations: int,
    seeds: np.ndarray,
    initial: np.ndarray | None = None,
) -> tuple[np.ndarray, float] | None:
    """Run one Leiden trial per seed; ``None`` if this process lacks the graph.

    Parameters
    ----------
    token
        Identifies the graph (a hash of its arrays).
    arrays
        The graph's arrays, or ``None`` to use the copy this process holds.
    objective_function, gamma, beta, n_iterations
        Passed to ``igraph.Graph.community_leiden``.
    seeds
        One seed per trial.
    initial
        Optional ``(len(seeds), n_vertices)`` starting labels (refinement): trial
        t continues from ``initial[t]``.

    Returns
    -------
    (labelings, seconds)
        ``(len(seeds), n_vertices)`` int32 labels and the time spent in Leiden.
    """
    g = _graph(token, arrays)
    if g is None:
        return None
    seeds = np.asarray(seeds, dtype=np.int64)
    labelings = np.empty((seeds.size, g.vcount()), dtype=np.int32)
    t0 = time.perf_counter()
    for t, seed in enumerate(seeds):
        with seeded_igraph_rng(seed):
            part = g.community_leiden(
                objective_function=objective_function,
                weights="weight",
                resolution=float(gamma),
                beta=float(beta),
                n_iterations=int(n_iterations),
                initial_membership=None if initial is None else initial[t].tolist(),
            )
        labelings[t] = part.membership
    return labelings, time.perf_counter() - t0
