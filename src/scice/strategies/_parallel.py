"""Parallel layouts: where optimisation tasks and probe trials run.

Leiden holds the GIL and igraph's generator is per thread, so work is spread
over processes, never threads. :class:`ProcessLayout` uses joblib without naming
a backend, so ``with joblib.parallel_config(backend="dask"):`` (or ray) sends the
work to that cluster; joblib's default is a local process pool (loky).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import joblib

from ._base import LayoutInfo, ParallelLayout

__all__ = ["SerialLayout", "ProcessLayout"]


class SerialLayout(ParallelLayout):
    """Everything in the calling process, one task after another."""

    def map(self, func: Callable[..., Any], tasks: Sequence[tuple], n_jobs: int,
            callback: Callable[[Any], None] | None = None) -> list[Any]:
        out = []
        for args in tasks:
            result = func(*args)
            if callback is not None:
                callback(result)
            out.append(result)
        return out

    def resolve(self, n_jobs: int, n_tasks: int, n_vertices: int, n_edges: int) -> LayoutInfo:
        return LayoutInfo(n_workers=1, outer_workers=1, inner_workers=1, backend="sequential",
                          layout="serial")


def _indexed(func: Callable[..., Any], index: int, args: tuple) -> tuple[int, Any]:
    """Run ``func(*args)`` on a worker and return it with its task index."""
    return index, func(*args)


_BACKEND_NAMES = {"LokyBackend": "loky", "MultiprocessingBackend": "multiprocessing",
                  "ThreadingBackend": "threading", "SequentialBackend": "sequential",
                  "DaskDistributedBackend": "dask", "RayBackend": "ray"}


def _active_backend_name() -> str:
    """The joblib backend work would go to (``"loky"``, ``"dask"``, ``"ray"``, ...)."""
    backend, _ = joblib.parallel.get_active_backend(prefer="processes")
    name = type(backend).__name__
    return _BACKEND_NAMES.get(name, name.removesuffix("Backend").lower() or name)


class ProcessLayout(ParallelLayout):
    """Tasks on joblib workers (processes by default; whatever backend is active).

    Optimisation tasks (targets or manual resolutions) run side by side on up to
    ``n_jobs`` workers. Search probes are sequential by nature; on graphs with at
    least ``inner_min_edges`` edges each probe's trials are split across workers,
    below that they run in the parent (dispatch would cost more than it saves).

    Parameters
    ----------
    inner_min_edges : int, default=1_000
        Edge count from which probe trials are split across workers (which also
        starts the worker pool during the search rather than after it).
    batch_size : int or "auto", default=1
        joblib batch size for optimisation tasks.
    """

    def __init__(self, inner_min_edges: int = 1_000, batch_size: int | str = 1):
        self.inner_min_edges = inner_min_edges
        self.batch_size = batch_size

    @contextmanager
    def session(self, n_jobs: int) -> Iterator[None]:
        """Keep one joblib pool open for every :meth:`map` of a fit.

        Opening a ``joblib.Parallel`` costs milliseconds; a search sends one small
        map per probe, so the pool is opened once and reused.
        """
        if n_jobs == 1:
            yield
            return
        with self._parallel(n_jobs) as parallel:
            self._session = (n_jobs, parallel)
            try:
                yield
            finally:
                self._session = None

    def map(self, func: Callable[..., Any], tasks: Sequence[tuple], n_jobs: int,
            callback: Callable[[Any], None] | None = None) -> list[Any]:
        if n_jobs == 1 or len(tasks) <= 1:
            return SerialLayout().map(func, tasks, 1, callback)
        session = getattr(self, "_session", None)
        parallel = session[1] if session is not None and session[0] == n_jobs else self._parallel(n_jobs)
        out: list[Any] = [None] * len(tasks)
        # Results arrive as tasks finish (so callbacks, e.g. checkpoints, see each one
        # at once) and are put back in task order.
        for index, result in parallel(joblib.delayed(_indexed)(func, i, args) for i, args in enumerate(tasks)):
            if callback is not None:
                callback(result)
            out[index] = result
        return out

    def _parallel(self, n_jobs: int) -> joblib.Parallel:
        """A joblib pool on the active backend (none named), yielding results as they finish."""
        return joblib.Parallel(n_jobs=n_jobs, prefer="processes", batch_size=self.batch_size,
                               return_as="generator_unordered")

    def resolve(self, n_jobs: int, n_tasks: int, n_vertices: int, n_edges: int) -> LayoutInfo:
        outer = max(1, min(n_jobs, n_tasks))
        inner = n_jobs if (n_jobs > 1 and n_edges >= self.inner_min_edges) else 1
        backend = "sequential" if n_jobs == 1 else _active_backend_name()
        return LayoutInfo(n_workers=n_jobs, outer_workers=outer, inner_workers=inner, backend=backend,
                          layout="processes")
