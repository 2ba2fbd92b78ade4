"""Parallel layouts: where Leiden trials run.

Leiden holds the GIL and igraph's generator is per thread, so Leiden is spread
over processes, never threads (the parent's threads only coordinate tasks).
:class:`ProcessLayout` uses joblib without naming a backend, so
``with joblib.parallel_config(backend="dask"):`` (or ray) sends the work to
that cluster; joblib's default is a local process pool (loky). Whether trials
run in the calling process or on the pool is decided by one rule,
:func:`runs_in_parent`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import as_completed
from contextlib import contextmanager
from typing import Any

import joblib

from .._worker import call_indexed as _indexed
from ._base import LayoutInfo, ParallelLayout
from ._pool import _PoolSession, active_backend_name

__all__ = ["SerialLayout", "ProcessLayout", "runs_in_parent", "LOCAL_WHILE_STARTING_MAX_EDGES"]

#: While a layout's workers are still starting (``layout.ready()`` is False), trials
#: on graphs up to this many edges run in the calling process instead of waiting.
#: Not on larger graphs: a Leiden call holds the GIL for its whole duration (seconds
#: on a large graph), and the pool's start needs the GIL in this process too.
LOCAL_WHILE_STARTING_MAX_EDGES = 50_000


def runs_in_parent(
    n_workers: int, n_edges: int = 0, *, min_edges: int = 0, ready: Callable[[], bool] | None = None
) -> bool:
    """Whether Leiden trials run in the calling process instead of on the worker pool.

    The one rule behind every such decision (:meth:`ProcessLayout.resolve`,
    :meth:`ProcessLayout.session` and :meth:`ProcessLayout.map`, and the trial
    runner's dispatch). Trials run in the parent when

    - there are fewer than two workers, or
    - the graph has fewer than ``min_edges`` edges (sending chunks would cost
      more than it saves), or
    - the pool is still starting (``ready()`` is False) and the graph has at most
      :data:`LOCAL_WHILE_STARTING_MAX_EDGES` edges. ``ready`` is only called
      for such small graphs.

    Parameters
    ----------
    n_workers
        Workers the trials could be spread over.
    n_edges
        Edges of the graph (0 when unknown: no edge rule applies).
    min_edges
        Edge count from which trials go to the pool.
    ready
        The layout's :meth:`~scice.strategies.ParallelLayout.ready`, or ``None``
        when the pool's start does not matter.
    """
    if n_workers <= 1 or n_edges < min_edges:
        return True
    return ready is not None and n_edges <= LOCAL_WHILE_STARTING_MAX_EDGES and not ready()


class SerialLayout(ParallelLayout):
    """Everything in the calling process, one task after another."""

    def map(
        self,
        func: Callable[..., Any],
        tasks: Sequence[tuple],
        n_jobs: int,
        callback: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        out = []
        for args in tasks:
            result = func(*args)
            if callback is not None:
                callback(result)
            out.append(result)
        return out

    def resolve(self, n_jobs: int, n_tasks: int, n_vertices: int, n_edges: int) -> LayoutInfo:
        return LayoutInfo(n_workers=1, outer_workers=1, inner_workers=1, backend="sequential", layout="serial")


class ProcessLayout(ParallelLayout):
    """Leiden chunks on joblib workers (processes by default; whatever backend is active).

    The parent process runs the method's logic; workers only run Leiden. Up to
    ``outer_workers`` tasks (targets or manual resolutions) are in flight at once,
    each coordinated by a thread of the parent, and every trial set a task or the
    search asks for is split into ``inner_workers`` chunks of trials that go to
    the pool. So a long refinement of one target still uses every worker, and a
    worker process imports only numpy and igraph. With joblib's default backend
    (loky) chunks go straight to loky's reusable process pool; with any other
    active backend (``joblib.parallel_config(backend="dask")``, ray, ...) they go
    through ``joblib.Parallel``. Graphs with fewer than
    ``inner_min_edges`` edges run in the parent (dispatch would cost more than
    it saves).

    Parameters
    ----------
    inner_min_edges : int, default=1_000
        Edge count from which trials are sent to workers.
    tasks_per_worker : int, default=2
        Tasks in flight per worker: enough requests queued to keep every worker
        busy while a task scores its last trial set.
    batch_size : int or "auto", default=1
        joblib batch size for chunks.
    """

    #: The open :meth:`session`'s pool (class default: none). Not a parameter and not
    #: pickled: ``get_params``, ``clone`` and pickling never see it.
    _session: _PoolSession | None = None

    def __init__(self, inner_min_edges: int = 1_000, tasks_per_worker: int = 2, batch_size: int | str = 1):
        self.inner_min_edges = inner_min_edges
        self.tasks_per_worker = tasks_per_worker
        self.batch_size = batch_size

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may return __dict__ itself
        state.pop("_session", None)
        return state

    @property
    def _pool(self) -> _PoolSession:
        """The open session's pool, or an idle one outside a fit."""
        session = self._session
        return session if session is not None else _PoolSession()

    @contextmanager
    def session(self, n_jobs: int) -> Iterator[None]:
        """Keep the worker pool of the active backend open for the duration of a fit.

        loky: the reusable pool starts in the background, and until every worker
        has started (:meth:`ready`) small graphs run Leiden in the parent instead
        of waiting. Backends that build a new pool for every ``joblib.Parallel``
        call (multiprocessing, ray: new processes that would not hold the graph)
        get one managed ``joblib.Parallel`` for the whole fit. Others (dask) keep
        their workers between calls already.
        """
        pool = _PoolSession() if runs_in_parent(n_jobs) else _PoolSession.open(n_jobs, self.batch_size)
        self._session = pool
        try:
            yield
        finally:
            pool.close()
            vars(self).pop("_session", None)  # back to the class default: no pool

    def abort(self) -> None:
        """Kill the local loky workers now (running chunks end; the next fit starts a new pool).

        The workers are killed here, not left to loky's manager thread, so none
        can outlive the fit (a worker blocked on sending a result nobody reads
        would keep the interpreter from exiting). After an abort, :meth:`map`
        refuses work instead of starting a new pool, until the session ends.
        Other backends are left alone: their running chunks finish. Outside a
        session there is nothing to stop.
        """
        self._pool.abort()

    def ready(self) -> bool:
        return self._pool.ready()

    def map(
        self,
        func: Callable[..., Any],
        tasks: Sequence[tuple],
        n_jobs: int,
        callback: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        if not tasks:
            return []
        if runs_in_parent(n_jobs):
            return SerialLayout().map(func, tasks, 1, callback)
        if active_backend_name() == "loky":
            return self._map_loky(func, tasks, n_jobs, callback)
        return self._map_joblib(func, tasks, n_jobs, callback)

    def _map_loky(
        self, func: Callable[..., Any], tasks: Sequence[tuple], n_jobs: int, callback: Callable[[Any], None] | None
    ) -> list[Any]:
        """Joblib's default backend, used directly: loky's reusable process pool.

        ``joblib.Parallel`` polls for results every 10 ms, which is longer than
        a chunk of Leiden trials takes on a small graph; loky's futures return as
        soon as a chunk is done (about 1 ms per round trip).
        """
        executor = self._pool.loky(n_jobs)
        futures = {executor.submit(func, *args): i for i, args in enumerate(tasks)}
        out: list[Any] = [None] * len(tasks)
        # On an exception the remaining futures are not cancelled: loky's manager
        # thread fails on cancelled futures when the pool is then shut down (and
        # would leave its workers running); abort() ends them instead.
        for future in as_completed(futures):
            result = future.result()
            if callback is not None:
                callback(result)
            out[futures[future]] = result
        return out

    def _map_joblib(
        self, func: Callable[..., Any], tasks: Sequence[tuple], n_jobs: int, callback: Callable[[Any], None] | None
    ) -> list[Any]:
        """Any other joblib backend (dask, ray, multiprocessing, threading)."""
        jobs = (joblib.delayed(_indexed)(func, i, args) for i, args in enumerate(tasks))
        results = self._pool.run_joblib(jobs, n_jobs, self.batch_size)
        out: list[Any] = [None] * len(tasks)
        # Results arrive as chunks finish where the backend can return them so (a
        # callback can stop the fit at once) and are put back in task order.
        for index, result in results:
            if callback is not None:
                callback(result)
            out[index] = result
        return out

    def resolve(self, n_jobs: int, n_tasks: int, n_vertices: int, n_edges: int) -> LayoutInfo:
        if not runs_in_parent(n_jobs, n_edges, min_edges=self.inner_min_edges):
            inner = n_jobs
            outer = max(1, min(n_tasks, int(self.tasks_per_worker) * n_jobs))
        else:
            inner = outer = 1
        backend = "sequential" if inner == 1 else active_backend_name()
        return LayoutInfo(
            n_workers=n_jobs, outer_workers=outer, inner_workers=inner, backend=backend, layout="processes"
        )
