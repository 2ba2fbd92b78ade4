"""Parallel layouts: where Leiden trials run.

Leiden holds the GIL and igraph's generator is per thread, so Leiden is spread
over processes, never threads (the parent's threads only coordinate tasks).
:class:`ProcessLayout` uses joblib without naming a backend, so
``with joblib.parallel_config(backend="dask"):`` (or ray) sends the work to
that cluster; joblib's default is a local process pool (loky).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import as_completed
from contextlib import contextmanager
from typing import Any

import joblib

from .._worker import WORKER_ENV, held_graphs
from .._worker import call_indexed as _indexed
from ._base import LayoutInfo, ParallelLayout

__all__ = ["SerialLayout", "ProcessLayout"]


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


_BACKEND_NAMES = {
    "LokyBackend": "loky",
    "MultiprocessingBackend": "multiprocessing",
    "ThreadingBackend": "threading",
    "SequentialBackend": "sequential",
    "DaskDistributedBackend": "dask",
    "RayBackend": "ray",
}


def _active_backend_name() -> str:
    """The joblib backend work would go to (``"loky"``, ``"dask"``, ``"ray"``, ...)."""
    backend, _ = joblib.parallel.get_active_backend(prefer="processes")
    name = type(backend).__name__
    return _BACKEND_NAMES.get(name, name.removesuffix("Backend").lower() or name)


def _pool_per_call() -> bool:
    """Whether the active backend builds a new worker pool for every ``joblib.Parallel`` call.

    joblib's multiprocessing backend does, and so do its subclasses (ray's).
    """
    backend, _ = joblib.parallel.get_active_backend(prefer="processes")
    return isinstance(backend, joblib.parallel.MultiprocessingBackend)


def _new_parallel(n_jobs: int, batch_size: int | str) -> joblib.Parallel:
    """A ``joblib.Parallel`` on the active backend, returning results as they finish where it can."""
    backend, _ = joblib.parallel.get_active_backend(prefer="processes")
    return_as = "generator_unordered" if getattr(backend, "supports_return_generator", False) else "list"
    return joblib.Parallel(n_jobs=n_jobs, prefer="processes", batch_size=batch_size, return_as=return_as)


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

    def __init__(self, inner_min_edges: int = 1_000, tasks_per_worker: int = 2, batch_size: int | str = 1):
        self.inner_min_edges = inner_min_edges
        self.tasks_per_worker = tasks_per_worker
        self.batch_size = batch_size

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
        self._warming = None
        self._parallel = None
        self._aborted = False
        if n_jobs > 1 and _active_backend_name() == "loky":
            from joblib.externals.loky import get_reusable_executor

            executor = self._executor = get_reusable_executor(max_workers=n_jobs, timeout=300, env=WORKER_ENV)
            self._warming = [executor.submit(held_graphs) for _ in range(n_jobs)]
        elif n_jobs > 1 and _pool_per_call():
            self._parallel = _new_parallel(n_jobs, self.batch_size)
            self._parallel_lock = threading.Lock()
            self._parallel.__enter__()
        try:
            yield
        finally:
            if self._parallel is not None:
                self._parallel.__exit__(None, None, None)
            self._warming = None
            self._executor = None
            self._parallel = None
            self._aborted = False

    def abort(self) -> None:
        """Kill the local loky workers now (running chunks end; the next fit starts a new pool).

        The workers are killed here, not left to loky's manager thread, so none
        can outlive the fit (a worker blocked on sending a result nobody reads
        would keep the interpreter from exiting). After an abort, :meth:`map`
        refuses work instead of starting a new pool. Other backends are left
        alone: their running chunks finish.
        """
        self._aborted = True
        executor = getattr(self, "_executor", None)
        if executor is None:
            return
        # SIGKILL, not executor.shutdown(kill_workers=True): loky's manager thread
        # treats dead workers as a broken pool and fails the pending chunks cleanly,
        # whereas its shutdown path races with queued chunks (KeyError and
        # InvalidStateError in the manager thread, which then leaves workers alive).
        processes = list(getattr(executor, "_processes", {}).values())  # loky's worker processes
        for process in processes:
            try:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGKILL)
            except (OSError, ValueError, AttributeError, TypeError):  # already gone
                pass
        for process in processes:
            try:
                process.join(timeout=5)
            except (OSError, ValueError, AttributeError, AssertionError):
                pass
        # Flag the pool as shut down (no kill_workers: they are dead already), so the
        # next fit's get_reusable_executor starts a new one instead of handing back
        # this one before loky's manager thread has noticed the dead workers.
        executor.shutdown(wait=False)

    def ready(self) -> bool:
        warming = getattr(self, "_warming", None)
        return warming is None or all(f.done() for f in warming)

    def map(
        self,
        func: Callable[..., Any],
        tasks: Sequence[tuple],
        n_jobs: int,
        callback: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        if n_jobs <= 1 or not tasks:
            return SerialLayout().map(func, tasks, 1, callback)
        if _active_backend_name() == "loky":
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
        if getattr(self, "_aborted", False):
            raise RuntimeError("the fit was stopped and its worker pool shut down")
        executor = getattr(self, "_executor", None)  # the fit's pool (session)
        if executor is None:  # map called outside a fit
            from joblib.externals.loky import get_reusable_executor

            executor = get_reusable_executor(max_workers=n_jobs, timeout=300, env=WORKER_ENV)
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
        managed = getattr(self, "_parallel", None)
        if managed is not None:
            # One pool for the whole fit; a joblib.Parallel runs one call at a time.
            with self._parallel_lock:
                results = managed(jobs)
        else:
            # A new joblib.Parallel per call, so threads can call map at once; the
            # backend keeps its workers between calls (a dask client's cluster).
            results = _new_parallel(n_jobs, self.batch_size)(jobs)
        out: list[Any] = [None] * len(tasks)
        # Results arrive as chunks finish where the backend can return them so (a
        # callback can stop the fit at once) and are put back in task order.
        for index, result in results:
            if callback is not None:
                callback(result)
            out[index] = result
        return out

    def resolve(self, n_jobs: int, n_tasks: int, n_vertices: int, n_edges: int) -> LayoutInfo:
        if n_jobs > 1 and n_edges >= self.inner_min_edges:
            inner = n_jobs
            outer = max(1, min(n_tasks, int(self.tasks_per_worker) * n_jobs))
        else:
            inner = outer = 1
        backend = "sequential" if inner == 1 else _active_backend_name()
        return LayoutInfo(
            n_workers=n_jobs, outer_workers=outer, inner_workers=inner, backend=backend, layout="processes"
        )
