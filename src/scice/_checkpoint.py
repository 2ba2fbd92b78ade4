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
so an interruption loses at most the trial sets in flight.

Checkpoint files are pickles: load only checkpoints you wrote yourself.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__

if TYPE_CHECKING:
    from ._graph import GraphData
    from ._plan import FitPlan

__all__ = ["Checkpoint", "TrialStore", "fingerprint_parts", "open_checkpoint", "run_fingerprint"]

_FORMAT = 1


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
        """Save ``obj`` under ``name`` atomically."""
        self._write(self.path / f"{name}.pkl", pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def trial_store(self, stage: str) -> TrialStore:
        """The store of the trial sets of ``stage`` (``"search"`` or ``"task_<key>"``) while it runs."""
        return TrialStore(self.path / "trials" / stage)

    def drop_trials(self, stage: str) -> None:
        """Delete the trial sets of ``stage``: its result is saved, a rerun will not replay it."""
        shutil.rmtree(self.path / "trials" / stage, ignore_errors=True)

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

    Files are named by a digest of the request's key
    (:attr:`scice._leiden.TrialRequest.key`) and hold its labelings. They are a
    cache, so they are written without ``fsync``: a file that cannot be read or
    has the wrong shape counts as missing and the trial set is run again.

    Parameters
    ----------
    path
        The stage's folder (created on the first write).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.disabled = False

    @staticmethod
    def name(key: tuple) -> str:
        """The file name of a request key (its ``repr`` is exact: floats round-trip, seeds are bytes)."""
        return hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest() + ".npz"

    def get(self, key: tuple, shape: tuple[int, int]) -> np.ndarray | None:
        """The labelings saved for ``key``, or ``None`` if there are none of this ``shape``."""
        file = self.path / self.name(key)
        if not file.exists():
            return None
        try:
            with np.load(file) as saved:
                labels = saved["labelings"]
        except Exception:  # a damaged file: run the trials again
            return None
        return labels if labels.shape == tuple(shape) and labels.dtype.kind == "i" else None

    def put(self, key: tuple, labelings: np.ndarray) -> None:
        """Save ``labelings`` under ``key`` (written to a temporary file, then moved into place).

        A write that fails (a full disk, a folder that cannot be created) warns
        once and turns the store off: the fit goes on, only a resumed run would
        compute these trial sets again.
        """
        if self.disabled:
            return
        tmp = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".trials.", suffix=".npz", dir=self.path)
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, labelings=labelings)
            os.replace(tmp, self.path / self.name(key))
        except OSError as err:
            self.disabled = True
            warnings.warn(
                f"scice: could not save a trial set in the checkpoint ({err}); this stage's trial sets are no "
                "longer saved, so resuming it would run them again. Free disk space or pass another checkpoint "
                "folder to keep them.",
                ResourceWarning,
                stacklevel=2,
            )
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


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
