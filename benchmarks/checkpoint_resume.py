"""What a checkpoint costs, and what its trial sets save when a fit is interrupted.

Usage::

    python benchmarks/checkpoint_resume.py pbmc --interrupt-after 8
    python benchmarks/checkpoint_resume.py gmm --n-cells 10000 --cluster-range 5 8 --interrupt-after 90 --n-jobs 2
    python benchmarks/checkpoint_resume.py pbmc --n-jobs 2 --repeat 3 --interrupt-after 0   # overhead only

Runs, on the same graph with the same parameters (defaults otherwise):

1. a fit without a checkpoint (the reference);
2. a fit with a checkpoint: its wall time against the reference, and the trial
   sets it saved (files, bytes, seconds spent writing them; files are deleted
   as stages finish, so they are counted as they are written);
3. a fit with a checkpoint stopped by Ctrl-C (``SIGALRM``) after
   ``--interrupt-after`` seconds; its folder is copied, and the copy's
   ``trials/`` deleted, which is what a checkpoint kept before trial sets were
   saved (finished stages only);
4. the rerun on the folder (finished stages and saved trial sets) and on the
   copy (finished stages only): Leiden calls and wall time of each; both must
   equal the reference.

Not part of the test-suite.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import load_graph  # noqa: E402

import scice  # noqa: E402
from scice import _checkpoint  # noqa: E402

WRITES = {"files": 0, "bytes": 0, "seconds": 0.0}


def count_writes() -> None:
    """Count every trial set a store writes (files, bytes on disk, seconds in ``put``)."""
    put = _checkpoint.TrialStore.put

    def counted(self, key, labelings):
        t0 = time.perf_counter()
        put(self, key, labelings)
        WRITES["seconds"] += time.perf_counter() - t0
        file = self.path / self.name(key)
        if file.exists():
            WRITES["files"] += 1
            WRITES["bytes"] += file.stat().st_size

    _checkpoint.TrialStore.put = counted


def fit(est, X, seconds: float | None = None) -> tuple[float, object]:
    """Wall time and the fitted estimator (``None`` if Ctrl-C came after ``seconds``)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    t0 = time.perf_counter()
    if seconds is not None:
        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        est.fit(X)
    except KeyboardInterrupt:
        return time.perf_counter() - t0, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return time.perf_counter() - t0, est


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["pbmc", "digits", "gmm"])
    parser.add_argument("--n-cells", type=int, default=10_000, help="gmm only")
    parser.add_argument("--cluster-range", nargs=2, type=int, default=(2, 10), metavar=("LO", "HI"))
    parser.add_argument("--optimizer", default="refine")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument(
        "--interrupt-after", type=float, default=8.0, help="seconds before Ctrl-C in step 3 (0: skip steps 3 and 4)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="run steps 1 and 2 this many times, alternating")
    parser.add_argument("--graph-cache", metavar="DIR")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    X = load_graph(args.dataset, args.n_cells, args.graph_cache)

    def estimator(checkpoint=None):
        return scice.SCICE(
            cluster_range=tuple(args.cluster_range),
            optimizer=args.optimizer,
            n_jobs=args.n_jobs,
            random_state=0,
            checkpoint=checkpoint,
        )

    count_writes()
    work = Path(tempfile.mkdtemp(prefix="scice-resume-"))
    try:
        for repeat in range(args.repeat):  # alternate, so a slower spell of the machine hits both
            wall_ref, ref = fit(estimator(), X)
            t = ref.results_.timings
            print(
                f"1. no checkpoint: {wall_ref:.1f} s, {int(t['n_leiden_calls']):,} Leiden calls, "
                f"{t['leiden_seconds']:.1f} s in Leiden",
                flush=True,
            )
            WRITES.update(files=0, bytes=0, seconds=0.0)
            wall_ck, ck = fit(estimator(work / f"full{repeat}"), X)
            assert ck.results_ == ref.results_
            print(
                f"2. checkpoint: {wall_ck:.1f} s ({wall_ck / wall_ref - 1:+.1%}), "
                f"{ck.results_.timings['leiden_seconds']:.1f} s in Leiden; {WRITES['files']:,} trial sets "
                f"saved, {WRITES['bytes'] / 2**20:.1f} MiB written in {WRITES['seconds']:.2f} s "
                f"({WRITES['seconds'] / wall_ck:.1%} of the fit; "
                f"{WRITES['bytes'] / max(WRITES['files'], 1) / 1024:.0f} KiB each)",
                flush=True,
            )
        if args.interrupt_after <= 0:
            return

        folder, old = work / "cut", work / "cut-old"
        wall_cut, done = fit(estimator(folder), X, args.interrupt_after)
        if done is not None:
            print(f"3. the fit finished in {wall_cut:.1f} s, before Ctrl-C: use a smaller --interrupt-after")
            return
        shutil.copytree(folder, old)
        shutil.rmtree(old / "trials", ignore_errors=True)
        n_saved = sum(1 for _ in (folder / "trials").rglob("*.npz")) if (folder / "trials").exists() else 0
        n_tasks = sum(1 for _ in folder.glob("task_*.pkl"))
        print(
            f"3. Ctrl-C after {wall_cut:.1f} s: search saved: {(folder / 'search.pkl').exists()}, "
            f"{n_tasks} finished target(s), {n_saved} trial sets of unfinished stages"
        )
        for name, path in (("with its trial sets", folder), ("finished stages only", old)):
            wall, est = fit(estimator(path), X)
            assert est.results_ == ref.results_, "a resumed fit must equal the reference"
            t = est.results_.timings
            print(
                f"4. rerun, {name}: {wall:.1f} s, {int(t['n_leiden_calls']):,} Leiden calls "
                f"({int(t.get('n_trial_sets_resumed') or 0)} trial sets read back); identical results",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
