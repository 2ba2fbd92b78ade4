"""Fault injection: failing and killed workers, Ctrl-C, resumable checkpoints, memory guard."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import scice._memory as memory_module
from scice import SCICE
from scice.exceptions import TaskFailedError
from scice.strategies import ProcessLayout, RefineOptimizer
from scice.testing import blob_graph


class FailingOptimizer(RefineOptimizer):
    """Raises for one target: a bug in a user's strategy."""

    def __init__(self, n_steps=11, refine_iterations=2, fail_target=4):
        super().__init__(n_steps, refine_iterations)
        self.fail_target = fail_target

    def optimize(self, task, context):
        if task.target == self.fail_target:
            raise ZeroDivisionError("injected failure")
        return super().optimize(task, context)


class KillingLayout(ProcessLayout):
    """A worker process dies (``os._exit``) on the first chunk of optimisation trials."""

    def ready(self):
        return True  # wait for the workers rather than run the first trials in the parent

    def map(self, func, tasks, n_jobs, callback=None):
        if tasks and tasks[0][5] == 10:  # n_iterations 10: a task's trials, not a search probe
            return super().map(os._exit, [(1,)] * len(tasks), n_jobs, callback)
        return super().map(func, tasks, n_jobs, callback)


def test_worker_exception_names_the_target_and_keeps_no_results(pbmc):
    est = SCICE(cluster_range=(3, 5), n_trials=4, n_bootstrap=10, random_state=0, n_jobs=2)
    est.fit(pbmc)  # a successful fit first: its results must not survive the failed one
    assert hasattr(est, "results_")
    est.set_params(optimizer=FailingOptimizer(fail_target=4))
    with pytest.raises(TaskFailedError, match=r"target 4 \(resolutions .*ZeroDivisionError: injected failure"):
        est.fit(pbmc)
    for attr in ("results_", "labels_", "best_cluster_"):
        assert not hasattr(est, attr)


def test_killed_worker_is_one_clear_error(pbmc):
    est = SCICE(cluster_range=(3, 5), n_trials=4, n_bootstrap=10, random_state=0, n_jobs=2, layout=KillingLayout())
    with pytest.raises(TaskFailedError, match=r"a worker failed \(TerminatedWorkerError.*unfinished: target \d"):
        est.fit(pbmc)
    assert not hasattr(est, "results_")
    # the next fit starts a fresh pool and works
    est.set_params(layout="processes").fit(pbmc)
    assert est.results_.parallel_layout["backend"] == "loky"


_INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import numpy as np
    import scanpy as sc
    import scice

    adata = sc.datasets.pbmc68k_reduced()
    graph_before = adata.obsp["connectivities"].copy()
    uns_before, obs_before = sorted(adata.uns), adata.obs.copy()

    def children():
        me, out = str(os.getpid()), []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/stat") as fh:
                        if fh.read().rsplit(")", 1)[1].split()[1] == me:
                            out.append(pid)
                except OSError:
                    pass
        return out

    def interrupt():
        time.sleep(float(sys.argv[1]))
        print("CHILDREN", " ".join(children()), flush=True)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    est = scice.SCICE(cluster_range=(2, 15), n_jobs=2, random_state=0)
    try:
        est.fit(adata)
        print("FINISHED")
    except KeyboardInterrupt:
        print("INTERRUPTED")
    untouched = ((adata.obsp["connectivities"] != graph_before).nnz == 0 and sorted(adata.uns) == uns_before
                 and adata.obs.equals(obs_before))
    print("UNTOUCHED", untouched, "FITTED", hasattr(est, "results_"), flush=True)
    """
)


def _alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_keyboard_interrupt_stops_workers_and_leaves_input_untouched(tmp_path):
    script = tmp_path / "interrupt.py"
    script.write_text(_INTERRUPT_SCRIPT)
    # Interrupt 4 s in: the worker pool is up and busy (the whole fit takes longer than that).
    proc = subprocess.run([sys.executable, str(script), "4"], capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert "INTERRUPTED" in out, out + proc.stderr
    assert "UNTOUCHED True FITTED False" in out
    children = out.split("CHILDREN", 1)[1].splitlines()[0].split()
    assert len(children) >= 2  # the worker pool was running when Ctrl-C came
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], "worker processes outlived the interrupted run"


_INTERRUPT = {"after": None, "started": 0}


class InterruptAfter(RefineOptimizer):
    """Ctrl-C when a task starts after ``_INTERRUPT["after"]`` have started (fault injection).

    The limit is a module global, not a parameter, so the resumed fit has the
    same parameters (and checkpoint fingerprint) as the interrupted one.
    """

    def optimize(self, task, context):
        _INTERRUPT["started"] += 1
        if _INTERRUPT["after"] is not None and _INTERRUPT["started"] > _INTERRUPT["after"]:
            raise KeyboardInterrupt
        return super().optimize(task, context)


def test_checkpoint_resume_gives_identical_results(tmp_path):
    graph = blob_graph(n_blobs=5, size=30, bridge=3)
    kw = dict(cluster_range=(2, 6), n_trials=5, n_bootstrap=20, random_state=3, optimizer=InterruptAfter())
    reference = SCICE(**kw).fit(graph).results_
    folder = tmp_path / "ckpt"
    _INTERRUPT.update(after=2, started=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            SCICE(**kw, checkpoint=folder).fit(graph)
    finally:
        _INTERRUPT.update(after=None)
    saved = sorted(p.name for p in folder.iterdir())
    assert "search.pkl" in saved and len([n for n in saved if n.startswith("task_")]) == 2
    resumed = SCICE(**kw, checkpoint=folder).fit(graph)
    assert resumed.results_.timings["n_tasks_resumed"] == 2
    assert resumed.results_.timings.get("search_resumed") == 1
    assert resumed.results_.clusters == reference.clusters
    assert resumed.results_.uncovered_targets == reference.uncovered_targets
    assert np.array_equal(resumed.labels_, SCICE(**kw).fit(graph).labels_)
    again = SCICE(**kw, checkpoint=folder).fit(graph)  # everything resumed: no Leiden at all
    assert again.results_.timings["n_leiden_calls"] == 0
    assert again.results_.clusters == reference.clusters


def test_checkpoint_refuses_another_run_and_needs_int_seed(tmp_path):
    graph = blob_graph()
    folder = tmp_path / "ckpt"
    SCICE(resolution=[0.05], n_trials=3, n_bootstrap=5, random_state=0, checkpoint=folder).fit(graph)
    with pytest.raises(ValueError, match="belongs to a different run"):
        SCICE(resolution=[0.05], n_trials=3, n_bootstrap=5, random_state=1, checkpoint=folder).fit(graph)
    with pytest.raises(ValueError, match="checkpoint needs an integer random_state"):
        SCICE(resolution=[0.05], n_trials=3, checkpoint=tmp_path / "other").fit(graph)


def test_memory_guard_refuses_and_warns(monkeypatch, blobs):
    monkeypatch.setattr(memory_module, "available_memory", lambda: 10_000)
    with pytest.raises(MemoryError, match=r"needs about .* is available\. Lower n_jobs .*n_trials"):
        SCICE(resolution=[0.05], n_trials=3).fit(blobs)
    SCICE(resolution=[0.05], n_trials=3, n_bootstrap=5, check_memory=False).fit(blobs)  # opt-out works
    need = memory_module.estimate_run_bytes(blobs.shape[0], blobs.nnz // 2, 3, 11, 1)["total"]
    monkeypatch.setattr(memory_module, "available_memory", lambda: int(need * 1.5))
    with pytest.warns(ResourceWarning, match="more than half"):
        SCICE(resolution=[0.05], n_trials=3, n_bootstrap=5).fit(blobs)


def _loky_workers() -> list[str]:
    """Pids of this process's loky worker processes (Linux)."""
    me, out = str(os.getpid()), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                parent = fh.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if parent == me and b"popen_loky" in cmd:
            out.append(pid)
    return out


_SEEN_WORKERS: list[str] = []


class InterruptInTask(RefineOptimizer):
    """Ctrl-C inside the task of target 4, once the workers are running chunks."""

    def optimize(self, task, context):
        if task.target == 4:
            context.trials(0.001)  # make sure the pool is up and has run chunks
            _SEEN_WORKERS[:] = _loky_workers()
            raise KeyboardInterrupt
        return super().optimize(task, context)


class _Waiting(ProcessLayout):
    def ready(self):
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_interrupt_during_tasks_stops_local_workers_at_once(pbmc):
    est = SCICE(
        cluster_range=(2, 6),
        n_trials=6,
        n_bootstrap=10,
        random_state=0,
        n_jobs=2,
        optimizer=InterruptInTask(),
        layout=_Waiting(),
    )
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        est.fit(pbmc)
    assert time.perf_counter() - t0 < 60
    assert len(_SEEN_WORKERS) >= 1
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(pid) for pid in _SEEN_WORKERS):
        time.sleep(0.1)
    assert not [pid for pid in _SEEN_WORKERS if _alive(pid)], "the interrupted fit left its workers running"
    assert not hasattr(est, "results_")
    est.set_params(optimizer="refine", layout="processes").fit(pbmc)  # a new pool serves the next fit
    assert est.results_.timings["n_leiden_calls"] > 0


def _stop_at_first_result(_result):
    raise RuntimeError("stop here")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_abort_kills_busy_workers_after_a_failed_map():
    """A map that failed (its callback raised) leaves chunks running and queued; abort() must
    still end every worker at once (loky's own shutdown fails on the pending chunks)."""
    layout = ProcessLayout()
    with layout.session(2):
        pids: set = set()
        deadline = time.time() + 30
        while len(pids) < 2 and time.time() < deadline:  # until both workers have started
            pids |= set(layout.map(os.getpid, [()] * 8, 2))
        assert len(pids) == 2
        with pytest.raises(RuntimeError, match="stop here"):
            layout.map(time.sleep, [(0.1,)] + [(60,)] * 5, 2, _stop_at_first_result)
        t0 = time.perf_counter()
        layout.abort()
        deadline = time.time() + 5
        while time.time() < deadline and any(_alive(str(pid)) for pid in pids):
            time.sleep(0.1)
        assert not [pid for pid in pids if _alive(str(pid))], "busy workers outlived abort()"
        assert time.perf_counter() - t0 < 5
        with pytest.raises(RuntimeError, match="worker pool shut down"):
            layout.map(os.getpid, [()] * 2, 2)
    # a new session gets a working pool
    with layout.session(2):
        assert len(layout.map(os.getpid, [()] * 4, 2)) == 4
