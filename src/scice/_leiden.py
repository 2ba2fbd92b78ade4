"""Seeded batches of Leiden trials, run in this process or split across workers.

:class:`TrialRunner` is the one place a fit asks for Leiden trials. It answers
repeated requests from memory (and, in a checkpointed fit, from the trial sets
an interrupted run saved), runs small graphs in the calling process and, on
a parallel layout, splits each request's trials into chunks that run on worker
processes (:func:`scice._worker.run_trials`). Every trial depends only on its
seed, resolution and starting labels, so the split does not change the result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _worker
from ._graph import GraphData
from ._merge import effective_counts
from ._similarity import smallest_int_dtype
from ._worker import Chunk
from .exceptions import FitCancelled, WorkerError
from .strategies._parallel import LOCAL_WHILE_STARTING_MAX_EDGES, runs_in_parent

if TYPE_CHECKING:
    from ._checkpoint import TrialStore

__all__ = [
    "LeidenConfig",
    "TrialSet",
    "TrialRequest",
    "TrialRunner",
    "WorkerError",
    "FitCancelled",
    "LOCAL_WHILE_STARTING_MAX_EDGES",
]


@dataclass(frozen=True)
class LeidenConfig:
    """What every Leiden trial of a run shares."""

    objective_function: str = "CPM"
    min_cluster_size: int = 2
    #: The graph's weight scale (see :func:`scice._graph.weight_scale`): every trial's
    #: ``beta`` is multiplied by it.
    weight_scale: float = 1.0


@dataclass(frozen=True, eq=False)
class TrialSet:
    """The labelings of one set of seeded trials at one resolution.

    ``key`` identifies how the labelings were produced, so equal keys mean equal
    labelings (it is used for caching and for refinement chains).
    """

    gamma: float
    labelings: np.ndarray
    effective_counts: np.ndarray
    n_iterations: int
    key: tuple = field(repr=False)

    @property
    def median_count(self) -> float:
        return float(np.median(self.effective_counts))

    @property
    def n_trials(self) -> int:
        return int(self.labelings.shape[0])


@dataclass(frozen=True, eq=False)
class TrialRequest:
    """One trial set to compute: a trial per seed at ``gamma``, optionally continuing ``start``."""

    gamma: float
    seeds: np.ndarray
    n_iterations: int
    beta: float
    start: TrialSet | None = None

    @property
    def key(self) -> tuple:
        return (
            float(self.gamma),
            float(self.beta),
            int(self.n_iterations),
            np.asarray(self.seeds, dtype=np.int64).tobytes(),
            None if self.start is None else self.start.key,
        )


def _total_iterations(req: TrialRequest) -> int:
    """Leiden iterations behind a request's labelings: its own plus its start's; ``-1`` once any ran to convergence."""
    before = 0 if req.start is None else req.start.n_iterations
    return -1 if req.n_iterations < 0 or before < 0 else int(req.n_iterations) + before


class TrialRunner:
    """Runs seeded Leiden trials on one graph and keeps timing and call counts.

    One runner serves a whole fit (search probes and every task); it is safe to
    call from several threads at once.

    Parameters
    ----------
    graph
        The validated graph.
    config
        Objective function and minimum cluster size.
    cache_bytes
        Budget for remembered trial sets; a repeated request (same gamma, seeds,
        iterations, beta and starting labels) is answered from memory.
    layout, n_chunks, n_workers
        With ``n_workers > 1`` (default: ``n_chunks``), each request's trials
        are split into up to ``n_chunks`` chunks run through ``layout.map`` on a
        pool of ``n_workers`` workers; otherwise trials run in the calling
        process.
    on_trials
        Called as ``on_trials(computed, cached)`` after each :meth:`run_many`:
        the trials it ran with Leiden (counted in ``n_leiden_calls``) and those
        answered from memory or from a checkpoint's trial store. The fit's
        progress bar counts them.
    """

    def __init__(
        self,
        graph: GraphData,
        config: LeidenConfig,
        cache_bytes: int = 256 * 2**20,
        layout: Any = None,
        n_chunks: int = 1,
        n_workers: int | None = None,
        on_trials: Callable[[int, int], None] | None = None,
    ):
        self.graph = graph
        self.on_trials = on_trials
        self.config = config
        self.cache_bytes = cache_bytes
        self.layout = layout
        self.n_chunks = max(1, int(n_chunks)) if layout is not None else 1
        self.n_workers = (self.n_chunks if n_workers is None else int(n_workers)) if layout is not None else 1
        self._cache: OrderedDict[tuple, TrialSet] = OrderedDict()
        self._cache_used = 0
        self._lock = threading.Lock()
        # Resends carrying the arrays not answered yet; threads whose resends carry none wait for 0.
        self._graph_sent = threading.Condition(self._lock)
        self._graph_sends_in_flight = 0
        self._local_lock = threading.Lock()
        self._stopped = threading.Event()
        self._pool_failed = False
        self.n_calls = 0
        self.n_cache_hits = 0
        self.n_chunks_sent = 0
        self.n_graph_sends = 0
        self.n_chunks_resent = 0
        self.n_trial_sets_resumed = 0
        self.leiden_seconds = 0.0

    # -- public -----------------------------------------------------------
    def run(
        self,
        gamma: float,
        seeds: np.ndarray,
        n_iterations: int,
        beta: float,
        start: TrialSet | None = None,
        store: TrialStore | None = None,
    ) -> TrialSet:
        """Run one trial per seed at ``gamma``.

        With ``start``, trial t continues from ``start``'s labeling t (igraph's
        ``initial_membership``) for ``n_iterations`` more iterations.
        """
        return self.run_many(
            [TrialRequest(float(gamma), np.asarray(seeds, dtype=np.int64), int(n_iterations), float(beta), start)],
            store,
        )[0]

    def run_many(self, requests: list[TrialRequest], store: TrialStore | None = None) -> list[TrialSet]:
        """Answer several requests at once (their chunks share one dispatch).

        Each request is answered from memory, else from ``store`` (a
        checkpoint's :class:`~scice._checkpoint.TrialStore`, when given), else
        with Leiden. Every answer not yet in ``store`` is saved there.
        """
        if self._stopped.is_set():
            raise FitCancelled()
        out: list[TrialSet | None] = [self._recall(req) for req in requests]
        cached = sum(int(req.seeds.size) for req, hit in zip(requests, out, strict=True) if hit is not None)
        if store is not None:
            for i, req in enumerate(requests):
                if out[i] is None:
                    out[i] = self._restore(req, store)
                    cached += int(req.seeds.size) if out[i] is not None else 0
                elif not store.has(req.key):  # computed by another stage, whose store may be gone on resume
                    store.put(req.key, out[i].labelings)
        todo = [i for i, answer in enumerate(out) if answer is None]
        computed = 0
        if todo:
            for i, trial_set in zip(todo, self._compute([requests[i] for i in todo]), strict=True):
                out[i] = trial_set
                if store is not None:
                    store.put(trial_set.key, trial_set.labelings)
            computed = int(sum(requests[i].seeds.size for i in todo))  # as counted in n_calls
        if self.on_trials is not None:
            self.on_trials(computed, cached)
        return out  # type: ignore[return-value]

    def stop(self) -> None:
        """Refuse further requests (running chunks finish); used to stop a fit."""
        self._stopped.set()

    def abort(self) -> None:
        """:meth:`stop`, and ask the layout to end running chunks now (Ctrl-C, a failed task).

        Not after the pool itself failed: it is already broken, and shutting it
        down again races with its own clean-up.
        """
        self._stopped.set()
        if self.layout is not None and not self._pool_failed:
            self.layout.abort()

    def stats(self) -> dict:
        with self._lock:
            return {
                "n_leiden_calls": self.n_calls,
                "n_cache_hits": self.n_cache_hits,
                "leiden_seconds": self.leiden_seconds,
                "n_chunks": self.n_chunks_sent,
                "n_graph_sends": self.n_graph_sends,
                "n_chunks_resent": self.n_chunks_resent,
                "n_trial_sets_resumed": self.n_trial_sets_resumed,
            }

    # -- private ----------------------------------------------------------
    def _arrays(self) -> _worker.GraphArrays:
        g = self.graph
        return _worker.GraphArrays(g.n_vertices, g.sources, g.targets, g.weights)

    def _compute(self, requests: list[TrialRequest]) -> list[TrialSet]:
        places, chunks = self._split(requests)
        answers = self._dispatch(chunks)

        labels = [np.empty((req.seeds.size, self.graph.n_vertices), dtype=np.int32) for req in requests]
        seconds = 0.0
        for (r, idx), (lab, sec) in zip(places, answers, strict=False):
            labels[r][idx] = lab
            seconds += sec
        with self._lock:
            self.leiden_seconds += seconds
            self.n_calls += int(sum(req.seeds.size for req in requests))
        return [
            self._trial_set(req, lab.astype(smallest_int_dtype(int(lab.max(initial=0))), copy=False))
            for req, lab in zip(requests, labels, strict=False)
        ]

    def _recall(self, req: TrialRequest) -> TrialSet | None:
        """``req``'s trial set if this runner remembers it (counted in ``n_cache_hits``)."""
        with self._lock:
            hit = self._cache.get(req.key)
            if hit is not None:
                self._cache.move_to_end(req.key)
                self.n_cache_hits += 1
            return hit

    def _restore(self, req: TrialRequest, store: TrialStore) -> TrialSet | None:
        """The trial set of ``req`` saved in ``store`` by an interrupted run, or ``None``."""
        labels = store.get(req.key, (int(req.seeds.size), self.graph.n_vertices))
        if labels is None:
            return None
        with self._lock:
            self.n_trial_sets_resumed += 1
        return self._trial_set(req, labels)

    def _trial_set(self, req: TrialRequest, labels: np.ndarray) -> TrialSet:
        """``req``'s answer from its labelings, remembered in memory."""
        trial_set = TrialSet(
            gamma=float(req.gamma),
            labelings=labels,
            effective_counts=effective_counts(labels, self.config.min_cluster_size),
            n_iterations=_total_iterations(req),
            key=req.key,
        )
        self._remember(trial_set)
        return trial_set

    def _split(self, requests: list[TrialRequest]) -> tuple[list[tuple[int, np.ndarray]], list[Chunk]]:
        """Split every request into chunks of consecutive trials.

        Returns each chunk's place (request index, trial positions) and the chunks,
        which name the graph by its token and carry no edges.
        """
        places: list[tuple[int, np.ndarray]] = []
        chunks: list[Chunk] = []
        for r, req in enumerate(requests):
            seeds = np.asarray(req.seeds, dtype=np.int64)
            initial = None if req.start is None else req.start.labelings
            parts = min(self.n_chunks, seeds.size)
            for idx in np.array_split(np.arange(seeds.size), parts):
                if not idx.size:
                    continue
                places.append((r, idx))
                chunks.append(
                    Chunk(
                        token=self.graph.token,
                        arrays=None,
                        objective_function=self.config.objective_function,
                        gamma=req.gamma,
                        beta=req.beta * self.config.weight_scale,
                        n_iterations=req.n_iterations,
                        seeds=seeds[idx],
                        initial=None if initial is None else initial[idx],
                    )
                )
        return places, chunks

    def _dispatch(self, chunks: list[Chunk]) -> list[tuple[np.ndarray, float]]:
        """Run chunks here or on the workers; a worker lacking the graph gets it on a resend."""
        ready = None if self.layout is None else self.layout.ready
        if runs_in_parent(self.n_workers, self.graph.n_edges, ready=ready):
            arrays = self._arrays()
            # One thread at a time: igraph holds the GIL anyway, and a trial's
            # seeding and its Leiden call must not interleave with another's.
            with self._local_lock:
                return [_worker.run_trials(*chunk._replace(arrays=arrays)) for chunk in chunks]
        try:
            answers = self._map(chunks)
            missing = [i for i, a in enumerate(answers) if a is None]
            n_resent = self._resend_with_graph(chunks, answers, missing)
        except FitCancelled:
            raise
        except Exception as err:
            self._pool_failed = True
            if isinstance(err, WorkerError):
                raise
            raise WorkerError(f"{type(err).__name__}: {' '.join(str(err).split())}") from err
        with self._lock:
            self.n_chunks_sent += len(chunks) + n_resent
            self.n_chunks_resent += n_resent
        return answers

    def _resend_with_graph(self, chunks: list[Chunk], answers: list[Any], missing: list[int]) -> int:
        """Send again the chunks a worker answered ``None`` (it lacks the graph); the number resent.

        First resend: only as many chunks carry the edge arrays as there are
        workers the fit has not sent the graph to yet (:meth:`_take_graph_sends`,
        shared by every task thread). A thread whose resends carry none waits
        until the resends that do are answered, so the workers hold the graph
        by then. Second resend, for chunks still unanswered (a worker was
        restarted, two arrays reached the same worker, or the backend has more
        workers than ``n_workers``): every chunk carries the arrays. A chunk
        sent with the arrays cannot be answered ``None``; if one is, the
        backend lost its arguments and this raises.
        """
        n_resent = 0
        for first in (True, False):
            if not missing:
                break
            n_arrays = self._take_graph_sends(len(missing), everyone=not first)
            arrays = self._arrays() if n_arrays else None
            batch = [chunks[i]._replace(arrays=arrays) if k < n_arrays else chunks[i] for k, i in enumerate(missing)]
            try:
                if not n_arrays:
                    with self._graph_sent:
                        self._graph_sent.wait_for(lambda: self._graph_sends_in_flight == 0)
                got = self._map(batch)
            finally:
                if n_arrays:
                    with self._graph_sent:
                        self._graph_sends_in_flight -= 1
                        self._graph_sent.notify_all()
            for i, a in zip(missing, got, strict=True):
                answers[i] = a
            n_resent += len(batch)
            missing = [i for i in missing if answers[i] is None]
        if missing:
            raise WorkerError("a worker did not receive the graph it was sent")
        return n_resent

    def _take_graph_sends(self, n_missing: int, everyone: bool) -> int:
        """How many of ``n_missing`` resends carry the arrays (counted in ``n_graph_sends``).

        At most one per worker over the fit, unless ``everyone``: then all of
        them. A caller that gets any must release its place in
        ``_graph_sends_in_flight`` once those resends are answered.
        """
        with self._graph_sent:
            n = n_missing if everyone else min(n_missing, max(0, self.n_workers - self.n_graph_sends))
            self.n_graph_sends += n
            self._graph_sends_in_flight += n > 0
        return n

    def _map(self, chunks: list[Chunk]) -> list[Any]:
        """``layout.map`` of :func:`scice._worker.run_trials`, stopping at the first result after :meth:`stop`."""

        def check(_result: Any) -> None:
            if self._stopped.is_set():
                raise FitCancelled()

        return self.layout.map(_worker.run_trials, chunks, self.n_workers, check)

    def _remember(self, trial_set: TrialSet) -> None:
        size = trial_set.labelings.nbytes
        if size > self.cache_bytes:
            return
        with self._lock:
            if trial_set.key in self._cache:
                return
            self._cache[trial_set.key] = trial_set
            self._cache_used += size
            while self._cache_used > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cache_used -= old.labelings.nbytes
