"""Checkpoints keep the trial sets of unfinished stages: an interrupted fit resumes mid-target."""

from __future__ import annotations

import errno
import logging
import threading

import numpy as np
import pytest

import scice._checkpoint as checkpoint_module
from scice import SCICE
from scice._checkpoint import TrialStore
from scice._leiden import TrialRequest
from scice.strategies import BisectionSearcher, ConvergeOptimizer, RefineOptimizer

# Fault injection: Ctrl-C before request number ``after + 1`` of the optimisers (or probe
# batch of the searcher) below. The limit is a module global, not a parameter, so the
# resumed fit has the same parameters (and checkpoint fingerprint) as the interrupted one.
_LIMIT = {"after": None, "requests": 0}
_LOCK = threading.Lock()


def _tick() -> None:
    with _LOCK:
        _LIMIT["requests"] += 1
        if _LIMIT["after"] is not None and _LIMIT["requests"] > _LIMIT["after"]:
            raise KeyboardInterrupt


class _Counting:
    """A strategy's context whose trial requests pass through :func:`_tick`."""

    def __init__(self, context):
        self._context = context

    def __getattr__(self, name):
        attr = getattr(self._context, name)
        if name in ("trials", "refine", "refine_all", "probe", "probe_many"):

            def counted(*args, **kwargs):
                _tick()
                return attr(*args, **kwargs)

            return counted
        return attr


class InterruptRefine(RefineOptimizer):
    def optimize(self, task, context):
        return super().optimize(task, _Counting(context))


class InterruptConverge(ConvergeOptimizer):
    def optimize(self, task, context):
        return super().optimize(task, _Counting(context))


class InterruptSearch(BisectionSearcher):
    def run(self, targets, context, remove_threshold):
        return super().run(targets, _Counting(context), remove_threshold)


def _interrupted(kw, data, folder, after):
    """Fit with a checkpoint and Ctrl-C after ``after`` requests (the fit must not finish)."""
    _LIMIT.update(after=after, requests=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            SCICE(**kw, checkpoint=folder).fit(data)
    finally:
        _LIMIT.update(after=None)


def _reference(kw, data):
    """An uninterrupted fit without a checkpoint, and the number of requests it made."""
    _LIMIT.update(after=None, requests=0)
    est = SCICE(**kw).fit(data)
    return est, _LIMIT["requests"]


@pytest.mark.parametrize("optimizer", [InterruptRefine(), InterruptConverge()], ids=["refine", "converge"])
def test_interrupted_task_resumes_from_its_saved_trial_sets(pbmc, tmp_path, optimizer):
    # k = 8 on pbmc68k_reduced has no IC-1 grid resolution: the grid, then refinement or convergence
    kw = dict(cluster_range=(8, 8), n_trials=6, n_bootstrap=20, random_state=0, optimizer=optimizer)
    reference, n_requests = _reference(kw, pbmc)
    assert n_requests >= 12  # 11 grid resolutions and at least one refinement request
    folder = tmp_path / "ckpt"
    _interrupted(kw, pbmc, folder, after=n_requests - 1)
    assert not list(folder.glob("task_*.pkl"))  # the task did not finish ...
    assert len(list((folder / "trials" / "task_8").glob("*.npz"))) >= n_requests - 1  # ... its trial sets are kept
    assert not (folder / "trials" / "search").exists()  # the search finished: its trial sets were dropped
    resumed = SCICE(**kw, checkpoint=folder).fit(pbmc)
    timings = resumed.results_.timings
    assert timings["search_resumed"] == 1 and timings["n_tasks_resumed"] == 0
    assert timings["n_trial_sets_resumed"] >= n_requests - 1
    # only the last request ran again (the grid alone is 11 x 6 calls)
    assert 0 < timings["n_leiden_calls"] < reference.results_.timings["n_leiden_calls"] - 60
    assert resumed.results_ == reference.results_
    assert np.array_equal(resumed.labels_, reference.labels_)
    assert not (folder / "trials").exists()  # the fit finished: no trial sets are kept


def test_interrupted_search_resumes_from_its_saved_probes(pbmc, tmp_path):
    kw = dict(cluster_range=(3, 6), n_trials=6, n_bootstrap=20, random_state=0, searcher=InterruptSearch())
    reference, _ = _reference(kw, pbmc)
    n_probes = reference.results_.timings["n_probes"]
    folder = tmp_path / "ckpt"
    _interrupted(kw, pbmc, folder, after=5)  # five batches of probes, then Ctrl-C
    assert not (folder / "search.pkl").exists()
    saved = len(list((folder / "trials" / "search").glob("*.npz")))
    assert 5 <= saved < n_probes
    resumed = SCICE(**kw, checkpoint=folder).fit(pbmc).results_
    assert "search_resumed" not in resumed.timings and resumed.timings["n_probes"] == n_probes
    assert resumed.timings["n_trial_sets_resumed"] == saved
    assert resumed == reference.results_
    assert resumed.resolution_search_diagnostics.equals(reference.results_.resolution_search_diagnostics)


def test_a_serial_run_resumes_on_two_workers_with_identical_results(pbmc, tmp_path):
    # two targets side by side on two workers resume what one process saved
    kw = dict(cluster_range=(7, 8), n_trials=6, n_bootstrap=20, random_state=0, optimizer=InterruptRefine())
    reference, n_requests = _reference(kw, pbmc)
    folder = tmp_path / "ckpt"
    _interrupted(kw, pbmc, folder, after=n_requests // 2)
    resumed = SCICE(**kw, n_jobs=2, checkpoint=folder).fit(pbmc).results_
    assert resumed.timings["n_trial_sets_resumed"] > 0
    assert resumed == reference.results_


def test_damaged_saved_trial_sets_are_run_again(pbmc, tmp_path):
    kw = dict(cluster_range=(8, 8), n_trials=6, n_bootstrap=20, random_state=0, optimizer=InterruptRefine())
    reference, _ = _reference(kw, pbmc)
    folder = tmp_path / "ckpt"
    _interrupted(kw, pbmc, folder, after=5)
    files = list((folder / "trials" / "task_8").glob("*.npz"))
    assert len(files) == 5
    for file in files:
        file.write_bytes(file.read_bytes()[:20])  # writes cut short
    resumed = SCICE(**kw, checkpoint=folder).fit(pbmc).results_
    assert "n_trial_sets_resumed" not in resumed.timings  # none could be read: all ran again
    assert resumed == reference.results_


def test_trial_sets_of_a_saved_task_are_dropped_on_resume(pbmc, tmp_path, caplog):
    # a run stopped between saving a task and deleting its trial sets
    kw = dict(cluster_range=(3, 5), n_trials=4, n_bootstrap=10, random_state=0)
    folder = tmp_path / "ckpt"
    first = SCICE(**kw, checkpoint=folder).fit(pbmc).results_
    leftover = folder / "trials" / "task_3"
    leftover.mkdir(parents=True)
    (leftover / "stale.npz").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="scice"):
        again = SCICE(**kw, checkpoint=folder, verbose=True).fit(pbmc).results_
    assert "scice: 3 of 3 targets resumed from the checkpoint" in [r.getMessage() for r in caplog.records]
    assert again.timings["n_tasks_resumed"] == 3 and again.timings["n_leiden_calls"] == 0
    assert not (folder / "trials").exists()
    assert again == first


def test_trial_store_round_trip_and_damaged_files(tmp_path):
    store = TrialStore(tmp_path / "trials" / "task_3")
    key = (0.01, 0.1, 10, np.arange(4, dtype=np.int64).tobytes(), None)
    labels = np.array([[0, 1, 1], [1, 0, 0], [2, 2, 0], [0, 0, 1]], dtype=np.int8)
    assert store.get(key, (4, 3)) is None and not store.has(key)  # nothing saved yet
    store.put(key, labels)
    got = store.get(key, (4, 3))
    assert store.has(key) and got.dtype == np.int8 and np.array_equal(got, labels)
    assert store.get(key, (4, 5)) is None  # another graph's shape
    assert store.get((0.02, *key[1:]), (4, 3)) is None  # another resolution
    file = store.path / TrialStore.name(key)
    whole = file.read_bytes()
    file.write_bytes(whole[:20])  # a write cut short
    assert store.get(key, (4, 3)) is None
    big = np.random.default_rng(0).integers(0, 12, size=(4, 5_000)).astype(np.int8)
    store.put(key, big)
    data = bytearray(file.read_bytes())
    data[200:712] = bytes(512)  # damaged inside the compressed data (zlib.error when read)
    file.write_bytes(bytes(data))
    assert store.get(key, (4, 5_000)) is None
    np.save(file.with_suffix(".npy"), big)  # a plain array where an archive belongs
    file.with_suffix(".npy").replace(file)
    assert store.get(key, (4, 5_000)) is None
    assert [p.name for p in store.path.iterdir()] == [file.name]  # no temporary files left


def test_file_names_do_not_depend_on_numpy_scalar_types():
    # numpy 2 prints np.float64(0.01), not 0.01: a key built from numpy scalars must name the same file
    seeds = np.array([5, 7], dtype=np.int64)
    plain = TrialStore.name(TrialRequest(0.01, seeds, 10, 0.1).key)
    assert TrialStore.name(TrialRequest(np.float64(0.01), seeds.astype(np.int32), np.int64(10), 0.1).key) == plain
    assert TrialStore.name(TrialRequest(0.01, seeds, 12, 0.1).key) != plain  # other iterations
    assert TrialStore.name(TrialRequest(0.01, seeds[::-1].copy(), 10, 0.1).key) != plain  # other seeds


def test_another_igraph_version_does_not_reuse_trial_sets(monkeypatch, tmp_path):
    store = TrialStore(tmp_path / "trials" / "task_0")
    key = (0.01, 0.1, 10, b"seeds", None)
    store.put(key, np.zeros((2, 3), dtype=np.int8))
    monkeypatch.setattr(checkpoint_module, "_engine_version", lambda: "igraph 99.0")
    assert store.get(key, (2, 3)) is None


def test_a_full_disk_stops_the_trial_store_and_the_fit_goes_on(pbmc, tmp_path, monkeypatch):
    kw = dict(cluster_range=(3, 5), n_trials=4, n_bootstrap=10, random_state=0)
    reference = SCICE(**kw).fit(pbmc).results_
    real_save = np.savez_compressed

    def disk_fills(fh, **arrays):  # a write that runs out of space halfway
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.np, "savez_compressed", disk_fills)
    folder = tmp_path / "ckpt"
    with pytest.warns(UserWarning, match=r"stopped saving trial sets in the checkpoint.*No space left on device"):
        fitted = SCICE(**kw, checkpoint=folder).fit(pbmc).results_
    monkeypatch.setattr(checkpoint_module.np, "savez_compressed", real_save)
    assert fitted == reference
    assert len(list(folder.glob("task_*.pkl"))) == 3  # finished targets are still saved
    assert not (folder / "trials").exists()  # no partial or temporary files are left


def test_a_nearly_full_disk_keeps_room_for_the_results(pbmc, tmp_path, monkeypatch):
    kw = dict(cluster_range=(3, 5), n_trials=4, n_bootstrap=10, random_state=0)
    monkeypatch.setattr(checkpoint_module, "TRIALS_KEEP_FREE", 2**62)  # more than any disk has free
    folder = tmp_path / "ckpt"
    with pytest.warns(UserWarning, match="stopped saving trial sets"):
        fitted = SCICE(**kw, checkpoint=folder).fit(pbmc).results_
    assert fitted == SCICE(**kw).fit(pbmc).results_
    assert not (folder / "trials").exists() and len(list(folder.glob("task_*.pkl"))) == 3


def test_a_verbose_resumed_fit_says_what_it_read_back(pbmc, tmp_path, caplog):
    kw = dict(cluster_range=(7, 8), n_trials=6, n_bootstrap=20, random_state=0, optimizer=InterruptRefine())
    _, n_requests = _reference(kw, pbmc)
    folder = tmp_path / "ckpt"
    _interrupted(kw, pbmc, folder, after=n_requests // 2)
    n_saved = len(list(folder.glob("task_*.pkl")))
    n_stored = sum(1 for _ in (folder / "trials").rglob("*.npz"))
    assert n_stored > 0
    with caplog.at_level(logging.INFO, logger="scice"):
        SCICE(**kw, checkpoint=folder, verbose=True).fit(pbmc)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("scice: search resumed from the checkpoint (") for line in lines), lines
    assert any(line.startswith("scice: done in") and f"({n_stored} trial sets read back" in line for line in lines)
    resumed_line = f"scice: {n_saved} of 2 targets resumed from the checkpoint"
    assert (resumed_line in lines) == (n_saved > 0)
