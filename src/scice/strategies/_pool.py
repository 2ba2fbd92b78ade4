"""The live worker pool of one fit, and the joblib backend it runs on.

A :class:`~scice.strategies.ProcessLayout` is a parameter object: it is cloned,
compared and pickled like any scikit-learn estimator. The pool it runs chunks
on is not a parameter: :meth:`~scice.strategies.ProcessLayout.session` opens one
:class:`_PoolSession` for the fit and keeps it in a single private attribute
that ``get_params``, ``clone`` and pickling never see.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

import joblib

from .._worker import WORKER_ENV, held_graphs

__all__ = ["active_backend_name", "pool_per_call", "new_parallel", "loky_executor"]

_BACKEND_NAMES = {
    "LokyBackend": "loky",
    "MultiprocessingBackend": "multiprocessing",
    "ThreadingBackend": "threading",
    "SequentialBackend": "sequential",
    "DaskDistributedBackend": "dask",
    "RayBackend": "ray",
}


def active_backend_name() -> str:
    """The joblib backend work would go to (``"loky"``, ``"dask"``, ``"ray"``, ...)."""
    backend, _ = joblib.parallel.get_active_backend(prefer="processes")
    name = type(backend).__name__
    return _BACKEND_NAMES.get(name, name.removesuffix("Backend").lower() or name)


def pool_per_call() -> bool:
    """Whether the active backend builds a new worker pool for every ``joblib.Parallel`` call.

    joblib's multiprocessing backend does, and so do its subclasses (ray's).
    """
    backend, _ = joblib.parallel.get_active_backend(prefer="processes")
    return isinstance(backend, joblib.parallel.MultiprocessingBackend)


def new_parallel(n_jobs: int, batch_size: int | str) -> joblib.Parallel:
    """A ``joblib.Parallel`` on the active backend, returning results as they finish where it can."""
    backend, _ = joblib.parallel.get_active_backend(prefer="processes")
    return_as = "generator_unordered" if getattr(backend, "supports_return_generator", False) else "list"
    return joblib.Parallel(n_jobs=n_jobs, prefer="processes", batch_size=batch_size, return_as=return_as)


def loky_executor(n_jobs: int) -> Any:
    """The reusable loky process pool with ``n_jobs`` workers (in scice's worker environment)."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=n_jobs, timeout=300, env=WORKER_ENV)


def _kill_loky_workers(executor: Any) -> None:
    """SIGKILL the pool's worker processes, wait for them, and flag the pool as shut down.

    SIGKILL, not ``executor.shutdown(kill_workers=True)``: loky's manager thread
    treats dead workers as a broken pool and fails the pending chunks cleanly,
    whereas its shutdown path races with queued chunks (KeyError and
    InvalidStateError in the manager thread, which then leaves workers alive).
    """
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


class _PoolSession:
    """The worker pool a fit's chunks run on, from :meth:`open` to :meth:`close`.

    An idle session (no arguments) stands for "no fit is running": chunks then
    go to loky's shared reusable pool or to a new ``joblib.Parallel`` per call.

    Parameters
    ----------
    executor
        The fit's loky pool (joblib's default backend).
    warming
        Futures of the first call on each loky worker; the pool is ready once all are done.
    parallel
        One entered ``joblib.Parallel`` for the whole fit, for backends that build a
        new pool for every call (multiprocessing, ray).
    """

    def __init__(self, executor: Any = None, warming: Iterable[Future] = (), parallel: joblib.Parallel | None = None):
        self.executor = executor
        self.warming = list(warming)
        self.parallel = parallel
        self.lock = threading.Lock()  # a joblib.Parallel runs one call at a time
        self.aborted = False

    @classmethod
    def open(cls, n_jobs: int, batch_size: int | str) -> _PoolSession:
        """Start (or keep open) the active backend's pool of ``n_jobs`` workers.

        loky: the reusable pool starts in the background (:meth:`ready` says when
        every worker is up). Backends that build a new pool for every
        ``joblib.Parallel`` call get one managed ``joblib.Parallel``. Others (dask)
        keep their workers between calls already: an idle session.
        """
        if active_backend_name() == "loky":
            executor = loky_executor(n_jobs)
            return cls(executor=executor, warming=[executor.submit(held_graphs) for _ in range(n_jobs)])
        if pool_per_call():
            parallel = new_parallel(n_jobs, batch_size)
            parallel.__enter__()
            return cls(parallel=parallel)
        return cls()

    def close(self) -> None:
        """End the managed ``joblib.Parallel``; loky's reusable pool stays for the next fit."""
        if self.parallel is not None:
            self.parallel.__exit__(None, None, None)

    def ready(self) -> bool:
        """Whether every worker has started (always True without a loky pool)."""
        return all(f.done() for f in self.warming)

    def abort(self) -> None:
        """Refuse further loky work and kill the fit's loky workers (other backends: nothing to kill)."""
        self.aborted = True
        if self.executor is not None:
            _kill_loky_workers(self.executor)

    def loky(self, n_jobs: int) -> Any:
        """The fit's loky pool (loky's shared one for an idle session); refused after :meth:`abort`."""
        if self.aborted:
            raise RuntimeError("the fit was stopped and its worker pool shut down")
        return self.executor if self.executor is not None else loky_executor(n_jobs)

    def run_joblib(self, jobs: Iterable[Any], n_jobs: int, batch_size: int | str) -> Iterable[Any]:
        """Run ``joblib.delayed`` jobs on the fit's managed ``Parallel``, else on a new one.

        A new ``joblib.Parallel`` per call lets threads call at once; the backend
        keeps its workers between calls (a dask client's cluster).
        """
        if self.parallel is not None:
            with self.lock:
                return self.parallel(jobs)
        return new_parallel(n_jobs, batch_size)(jobs)
