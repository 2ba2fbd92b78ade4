"""Time a SCICE fit on a synthetic Gaussian-mixture graph (10k to 1M cells).

Usage::

    python benchmarks/bench_scale.py --n-cells 10000 --cluster-range 2 15 --estimate
    python benchmarks/bench_scale.py --n-cells 50000 --cluster-range 2 15 --estimate --checkpoint DIR
    python benchmarks/bench_scale.py --n-cells 200000 --cluster-range 2 10 --optimizer converge --estimate
    python benchmarks/bench_scale.py --n-cells 1000000 --resolution 2e-6 1e-5 --estimate
    python benchmarks/bench_scale.py --n-cells 200000 --cluster-range 2 10 --optimizer converge --estimate-only

The fit uses scice's defaults and ``n_jobs=2`` unless told otherwise. Prints graph
construction time, wall time of the fit, time in Leiden, the share of worker
time outside Leiden, the number of Leiden calls, how often the graph was sent to
a worker, peak memory (VmHWM of this process, reset just before the fit, and of
its worker processes), the IC table, the Leiden iterations (as
``converge_vs_refine.py`` counts them) and the trial sets per target. ``--estimate`` prints
``SCICE.estimate_cost`` first and compares it with the fit (``--estimate-only``:
the estimate alone, to plan a long run); ``--checkpoint DIR``
lets an interrupted fit resume (the comparison then covers only the resumed
part). ``--graph-cache DIR`` keeps the built graph for later runs.
Not part of the test-suite.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import gaussian_mixture_graph  # noqa: E402
from converge_vs_refine import iterations  # noqa: E402

import scice  # noqa: E402


def _status_mb(pid: int | str, field: str = "VmHWM") -> float:
    """Peak (``VmHWM``) or current (``VmRSS``) resident memory of a live process, in MiB (Linux)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> None:
    """Reset this process's VmHWM to its current size (Linux >= 4.0), so the peak is the fit's."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_mb() -> tuple[float, list[float]]:
    """Peak resident memory of this process and of each live child (the worker processes), in MiB."""
    me = str(os.getpid())
    children = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[1] == me:
                        children.append(_status_mb(pid))
            except OSError:
                pass
    own = _status_mb(me) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, sorted(children, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-cells", type=int, default=10_000)
    parser.add_argument("--n-clusters", type=int, default=12)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cluster-range", nargs=2, type=int, metavar=("LO", "HI"))
    mode.add_argument("--resolution", nargs="+", type=float)
    parser.add_argument("--n-trials", type=int, default=15)
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--n-steps", type=int, help="optimizer grid size (optimizer__n_steps; default: scice's)")
    parser.add_argument("--max-iterations", type=int, default=150, help="refinement rounds per target, at most")
    parser.add_argument("--optimizer", default="refine", help='"refine" (published) or "converge"')
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--estimate", action="store_true", help="print SCICE.estimate_cost before the fit and compare it with the fit"
    )
    parser.add_argument("--estimate-only", action="store_true", help="print SCICE.estimate_cost and stop (no fit)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--checkpoint", metavar="DIR", help="SCICE checkpoint folder: a rerun resumes the fit")
    parser.add_argument("--graph-cache", metavar="DIR", help="save the built graph here and reuse it on later runs")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    t0 = time.perf_counter()
    adata = gaussian_mixture_graph(args.n_cells, n_clusters=args.n_clusters, cache_dir=args.graph_cache)
    t_graph = time.perf_counter() - t0
    n_edges = adata.obsp["connectivities"].nnz // 2
    print(f"graph: {adata.n_obs} cells, {n_edges} edges, built in {t_graph:.1f} s")

    kw = {"resolution": args.resolution} if args.resolution else {"cluster_range": tuple(args.cluster_range or (2, 15))}
    est = scice.SCICE(
        **kw,
        n_trials=args.n_trials,
        n_bootstrap=args.n_bootstrap,
        n_jobs=args.n_jobs,
        max_iterations=args.max_iterations,
        optimizer=args.optimizer,
        random_state=args.random_state,
        checkpoint=args.checkpoint,
        verbose=args.verbose,
    )
    if args.n_steps is not None:
        est.set_params(optimizer__n_steps=args.n_steps)
    cost = None
    if args.estimate or args.estimate_only:
        t0 = time.perf_counter()
        cost = est.estimate_cost(adata)
        t_estimate = time.perf_counter() - t0
        print(cost, flush=True)
        if args.estimate_only:
            print(f"peak RSS of this process: {peak_rss_mb()[0]:.0f} MiB")
            return
    _reset_peak()
    rss_before = _status_mb(os.getpid(), "VmRSS")
    t0 = time.perf_counter()
    est.fit(adata)
    wall = time.perf_counter() - t0
    t = est.results_.timings
    # Serial: share of the parent's time; with workers: of the workers' time (idle counts as outside).
    share = f"{1 - t['leiden_seconds'] / max(t['worker_seconds'], 1e-12):.1%}"
    own, child = peak_rss_mb()
    print(
        f"fit: wall {wall:.1f} s | Leiden {t['leiden_seconds']:.1f} s (summed over workers) in "
        f"{int(t['n_leiden_calls'])} calls | search {t.get('search_seconds', 0):.1f} s | "
        f"scoring {t['scoring_seconds']:.2f} s | "
        f"outside Leiden {share} | "
        f"probes {int(t.get('n_probes', 0))} | graph sent {int(t.get('n_graph_sends', 0))} time(s) "
        f"in {int(t.get('n_chunks', 0))} chunks | resumed: search {int(t.get('search_resumed') or 0)}, "
        f"targets {int(t.get('n_tasks_resumed', 0))}, trial sets {int(t.get('n_trial_sets_resumed') or 0)}"
    )
    print(
        f"peak RSS: parent {own:.0f} MiB ({rss_before:.0f} MiB before the fit), "
        f"child processes (workers, loky resource tracker) "
        f"{', '.join(f'{c:.0f}' for c in child) or 'none'} MiB (largest first)"
    )
    print(f"layout: {est.results_.parallel_layout}")
    resumed = any(int(t.get(key) or 0) > 0 for key in ("search_resumed", "n_tasks_resumed", "n_trial_sets_resumed"))
    if cost is not None and resumed:
        print("estimate vs fit: not compared, part of the fit was resumed from the checkpoint")
    elif cost is not None:
        n_calls = int(t["n_leiden_calls"])
        print(
            f"estimate vs fit: calls {cost.leiden_calls:,} vs {n_calls:,}; wall {cost.seconds:.0f} s vs {wall:.0f} s "
            f"(real/estimate {wall / cost.seconds:.2f}); memory: parent {cost.parent_bytes / 2**20:.0f} MiB vs "
            f"{own - rss_before:.0f} MiB peak above its size before the fit, each worker "
            f"{cost.per_worker_bytes / 2**20:.0f} MiB vs {max(child, default=0):.0f} MiB peak; "
            f"the estimate took {t_estimate:.1f} s ({t_estimate / wall:.1%} of the fit)"
        )
    print(
        est.results_.to_frame()[["gamma", "ic", "ic_q05", "ic_q95", "n_partitions"]].to_string(
            float_format=lambda v: f"{v:.4g}"
        )
    )
    print("uncovered:", est.results_.uncovered_targets)
    diagnostics = est.results_.optimization_diagnostics
    if diagnostics is not None and "stage" in diagnostics:  # cluster-range mode; manual mode has no stages
        fixed, converged = iterations(est)
        print(f"Leiden iterations of fixed-iteration calls: {fixed:,}; calls run to convergence: {converged:,}")
    print_trial_sets(diagnostics)


def print_trial_sets(diagnostics) -> None:
    """Per target: trial sets the grid and the refinement ran, refinement rounds and the stop rule."""
    if diagnostics is None or diagnostics.empty or "target" not in diagnostics:
        return
    rows = []
    for target, d in diagnostics.groupby("target", sort=True):
        chosen = d[d["stage"] == "chosen"]
        refined = d["stage"].isin(["refine", "converge"])
        rows.append(
            {
                "target": int(target),
                "grid sets": int((d["stage"] == "grid").sum()),
                "refinement sets": int(refined.sum()),
                "rounds": int(d.loc[refined, "round"].max()) if refined.any() else 0,
                "stop": chosen["stop"].iloc[0] if "stop" in d and len(chosen) else "",
            }
        )
    print("trial sets per target:")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
