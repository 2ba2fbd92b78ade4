"""Where a fit's time went: one accumulator, filled stage by stage."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Timings"]

# The trial runner's counters, copied as they are.
_RUNNER_KEYS = ("n_leiden_calls", "n_cache_hits", "leiden_seconds", "n_chunks", "n_graph_sends", "n_chunks_resent")


@dataclass
class Timings:
    """Counts and seconds of one fit, becoming ``results_.timings``.

    The fields are declared in the order ``results_.timings`` lists them (a
    stored result keeps that order). The stages add what they measured:
    :meth:`add_search`, :meth:`add_tasks`, :meth:`add_runner` (the Leiden work
    of this fit, search included) and :meth:`finish`. Scoring and task times
    count only the work of this fit: tasks resumed from a checkpoint ran
    earlier. ``start`` is when the fit started (``time.perf_counter``).
    """

    start: float = field(default_factory=time.perf_counter)
    n_leiden_calls: int = 0
    n_cache_hits: int = 0
    leiden_seconds: float = 0.0
    scoring_seconds: float = 0.0
    n_probes: int = 0
    search_resumed: int | None = None  # 1 when the search came from a checkpoint
    search_seconds: float = 0.0
    n_tasks_resumed: int = 0
    n_trial_sets_resumed: int | None = None  # trial sets read from a checkpoint's trial store, when any
    optimize_seconds: float = 0.0
    task_seconds: float = 0.0
    n_chunks: int = 0
    n_graph_sends: int = 0
    n_chunks_resent: int = 0
    total_seconds: float = 0.0
    worker_seconds: float = 0.0

    def add_search(self, seconds: float, stats: Mapping[str, Any] | None = None, resumed: bool = False) -> None:
        """The search stage's wall time and its context's ``stats()`` (probes and their scoring)."""
        if resumed:
            self.search_resumed = 1
        if stats is not None:
            self.scoring_seconds += stats["scoring_seconds"]
            self.n_probes += stats["n_probes"]
        self.search_seconds = seconds

    def add_tasks(self, task_stats: Iterable[Mapping[str, float]], seconds: float, n_resumed: int) -> None:
        """The ``stats`` of the tasks this fit ran, the stage's wall time and the tasks resumed."""
        self.n_tasks_resumed = n_resumed
        self.optimize_seconds = seconds
        for stats in task_stats:
            self.scoring_seconds += stats.get("scoring_seconds", 0)
            self.task_seconds += stats.get("task_seconds", 0)

    def add_runner(self, stats: Mapping[str, Any]) -> None:
        """The trial runner's ``stats()``: Leiden calls, cache hits, chunks, graph sends and resent chunks.

        ``n_trial_sets_resumed`` is set only when trial sets of an interrupted
        run were read from the checkpoint.
        """
        for key in _RUNNER_KEYS:
            setattr(self, key, stats[key])
        if stats.get("n_trial_sets_resumed"):
            self.n_trial_sets_resumed = int(stats["n_trial_sets_resumed"])

    def finish(self, pool_workers: int) -> None:
        """Stop the clock.

        ``worker_seconds`` is the process time available for Leiden: the wall
        time of the processes that ran it (this one when serial, else the
        workers). ``1 - leiden_seconds / worker_seconds`` is the share outside
        Leiden: bookkeeping, scoring, dispatch and idle workers.
        """
        self.total_seconds = time.perf_counter() - self.start
        self.worker_seconds = self.total_seconds * max(1, pool_workers)

    def as_dict(self) -> dict[str, float]:
        """The ``results_.timings`` dict: every field but ``start``, in order, except those still ``None``."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "start")
        return {name: value for name, value in values if value is not None}
