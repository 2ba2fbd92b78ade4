"""Resumable runs: finished per-target results saved as they complete.

A checkpoint is a folder. ``manifest.json`` holds the run's fingerprint (a hash
of the graph, the targets or resolutions, every method parameter, the
strategies' parameters, ``random_state`` and the package version); the search
outcome and each finished task are pickled next to it, each written to a
temporary file and moved into place with ``os.replace``, so an interrupted write
never leaves a damaged entry. A rerun with the same fingerprint loads them and
only runs what is missing; since every task's result depends only on its
arguments, the resumed run's results are identical to an uninterrupted one.

While the search or a task runs, each trial set it computes is kept in
``trials/<stage>/`` (:class:`TrialStore`), and the folder is deleted once the
stage's result is saved. A rerun replays the unfinished stage from the start:
every trial set found there is read instead of run again (a trial set depends
only on its request: resolution, seeds, iterations, beta and starting labels),
so an interruption loses at most the batch of trial sets in flight (one
refinement round of a target, one batch of probes).

Checkpoint files are pickles: load only checkpoints you wrote yourself.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from ._warn import warn_from_caller

if TYPE_CHECKING:
    from ._graph import GraphData
    from ._plan import FitPlan

__all__ = ["Checkpoint", "TrialStore", "fingerprint_parts", "open_checkpoint", "run_fingerprint"]

_FORMAT = 1

#: A trial store stops saving when less than this would stay free on its disk (room for the results).
TRIALS_KEEP_FREE = 256 * 2**20


def run_fingerprint(parts: dict[str, Any]) -> str:
    """A stable hex digest of the JSON-able description of a run."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class Checkpoint:
    """A checkpoint folder bound to one run fingerprint.

    Parameters
    ----------
    path
        Folder to create or reuse.
    fingerprint
        :func:`run_fingerprint` of the run; a folder written by a different run
        is refused rather than silently mixed in.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"checkpoint={str(self.path)!r} exists and is not a folder; pass a folder path.")
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = self.path / "manifest.json"
        if manifest.exists():
            try:
                found = json.loads(manifest.read_text())
            except (OSError, ValueError) as err:
                raise ValueError(
                    f"checkpoint manifest {str(manifest)!r} is unreadable ({err}); "
                    "delete the folder or pass another checkpoint path."
                ) from err
            if found.get("fingerprint") != fingerprint or found.get("format") != _FORMAT:
                raise ValueError(
                    f"checkpoint={str(self.path)!r} belongs to a different run (graph, parameters, strategies "
                    "or random_state differ). Pass a new checkpoint folder, or delete this one to start over."
                )
        else:
            self._write(manifest, json.dumps({"format": _FORMAT, "fingerprint": fingerprint}).encode())

    # -- entries --------------------------------------------------------------
    def load(self, name: str) -> Any | None:
        """The object saved under ``name``, or ``None`` if there is none."""
        file = self.path / f"{name}.pkl"
        if not file.exists():
            return None
        with open(file, "rb") as fh:
            return pickle.load(fh)

    def save(self, name: str, obj: Any) -> None:
        """Save ``obj``, the result of stage ``name``, atomically; the stage's trial sets are then deleted."""
        self._write(self.path / f"{name}.pkl", pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        self.drop_trials(name)

    def trial_store(self, stage: str) -> TrialStore:
        """The store of the trial sets of ``stage`` (``"search"`` or ``"task_<key>"``) while it runs."""
        return TrialStore(self.path / "trials" / stage)

    def drop_trials(self, stage: str | None = None) -> None:
        """Delete the trial sets of ``stage`` (a rerun will not replay it), or of every stage."""
        shutil.rmtree(self.path / "trials" / (stage or ""), ignore_errors=True)

    def _write(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class TrialStore:
    """The trial sets one stage of a checkpointed fit has computed, one compressed file each.

    Files are named by a digest of the Leiden engine's version and the
    request's key (:attr:`scice._leiden.TrialRequest.key`: resolution, beta,
    iterations, seeds and the starting trial set's key) and hold its
    labelings. They are a cache, so they are written without ``fsync``: a file
    that cannot be read or has the wrong shape counts as missing, and the trial
    set is run again.

    Parameters
    ----------
    path
        The stage's folder (created on the first write).

    Attributes
    ----------
    disabled
        A write failed or the disk is nearly full: the store saves nothing more
        and its folder is deleted (see :meth:`put`).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.disabled = False

    @staticmethod
    def name(key: tuple) -> str:
        """The file name of a request key.

        ``repr`` is exact for the key's parts (floats round-trip, seeds are
        bytes); the engine's version is part of the name, so trial sets of
        another igraph version are never mixed into a resumed stage.
        """
        text = repr((_engine_version(), key))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest() + ".npz"

    def has(self, key: tuple) -> bool:
        """Whether a file for ``key`` exists (it may still turn out unreadable)."""
        return not self.disabled and (self.path / self.name(key)).is_file()

    def get(self, key: tuple, shape: tuple[int, int]) -> np.ndarray | None:
        """The labelings saved for ``key``, or ``None`` if there are none of this ``shape``."""
        try:
            with np.load(self.path / self.name(key)) as saved:
                labels = saved["labelings"]
        except Exception:  # missing, cut short or damaged anywhere (zlib.error, ...): a cache miss
            return None
        return labels if labels.shape == tuple(shape) and labels.dtype.kind == "i" else None

    def put(self, key: tuple, labelings: np.ndarray) -> None:
        """Save ``labelings`` under ``key`` (written to a temporary file, then moved into place).

        When less than ``TRIALS_KEEP_FREE`` bytes beyond the file would stay
        free on the disk, or a write fails, the store warns once, deletes its
        folder and saves nothing more: the fit goes on (and has room to save
        its results); only a resumed run would compute these trial sets again.
        """
        if self.disabled:
            return
        tmp = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.path).free
            if free < labelings.nbytes + TRIALS_KEEP_FREE:
                raise OSError(errno.ENOSPC, f"only {free:,} bytes are free")
            fd, tmp = tempfile.mkstemp(prefix=".trials.", suffix=".npz", dir=self.path)
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, labelings=labelings)
            os.replace(tmp, self.path / self.name(key))
            tmp = None
        except OSError as err:
            self._give_up(err)
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def _give_up(self, err: OSError) -> None:
        self.disabled = True
        shutil.rmtree(self.path, ignore_errors=True)
        warn_from_caller(
            f"scice: stopped saving trial sets in the checkpoint folder {str(self.path.parent.parent)!r} "
            f"({err.strerror or err}); the fit goes on, but an interrupted stage (the search or a target) "
            "would start again. "
            "Free disk space or pass another checkpoint folder to keep them."
        )


@functools.cache
def _engine_version() -> str:
    """The Leiden engine's version: its trial sets are reused only by the same version."""
    import igraph

    return f"igraph {igraph.__version__}"


def open_checkpoint(graph: GraphData, plan: FitPlan) -> Checkpoint | None:
    """The checkpoint folder of this run (``plan.checkpoint``), or ``None`` without one.

    Raises
    ------
    TypeError
        ``checkpoint`` is not a path.
    ValueError
        ``random_state`` is not an integer (a resumed run must replay the same
        seeds), or the folder belongs to another run.
    """
    if plan.checkpoint is None:
        return None
    if not isinstance(plan.checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a folder path, got {type(plan.checkpoint).__name__}.")
    if not isinstance(plan.random_state, (int, np.integer)) or isinstance(plan.random_state, bool):
        raise ValueError(
            "checkpoint needs an integer random_state (e.g. random_state=0): resuming must replay the same seeds."
        )
    return Checkpoint(plan.checkpoint, run_fingerprint(fingerprint_parts(graph, plan)))


def fingerprint_parts(graph: GraphData, plan: FitPlan) -> dict[str, Any]:
    """What identifies a run: a checkpoint is reused only by a run with the same parts.

    Changing any key or value here makes every existing checkpoint unusable.
    The parallel layout, ``n_jobs`` and ``check_memory`` are left out: they
    cannot change results.
    """
    return {
        "version": __version__,
        "graph": graph.token,
        "targets": None if plan.targets is None else [int(k) for k in plan.targets],
        "resolutions": None if plan.resolutions is None else [float(g) for g in plan.resolutions],
        "params": plan.fingerprint_params(),
        "random_state": int(plan.random_state),
        "strategies": {
            name: [
                type(obj).__module__ + "." + type(obj).__qualname__,
                {k: repr(v) for k, v in sorted(obj.get_params(deep=True).items())},
            ]
            for name, obj in plan.strategies._asdict().items()
            if name != "layout"
        },
    }
