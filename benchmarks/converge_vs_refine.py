"""The published refinement schedule against ``optimizer="converge"`` on the same graphs.

Usage::

    python benchmarks/converge_vs_refine.py                          # pbmc68k_reduced and digits, range 2..10
    python benchmarks/converge_vs_refine.py --gmm 10000 --graph-cache DIR   # adds a Gaussian-mixture graph

Fits ``SCICE(cluster_range=(2, 10), random_state=0)`` (defaults otherwise,
``n_jobs=1``) with ``optimizer="refine"`` and ``optimizer="converge"`` and
prints, per dataset and optimizer, the consistent counts (IC below 1.005), the
IC of every count, the Leiden calls, the Leiden iterations of the calls with a
fixed number of iterations (search probes, grid and refinement rounds; from the
diagnostics) plus the calls run to convergence, and the wall time. Both use the
same search and the same grid, so they differ only for counts without an IC-1
grid resolution. Not part of the test-suite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import gaussian_mixture_graph  # noqa: E402
from refine_schedule import digits_graph  # noqa: E402

import scice  # noqa: E402


def iterations(est: scice.SCICE) -> tuple[int, int]:
    """(iterations of fixed-iteration calls, calls run to convergence) of a fit."""
    res, n = est.results_, est.n_trials
    diag = res.optimization_diagnostics
    searcher = est.get_params()["searcher"]
    n_probe = getattr(searcher, "n_probe_trials", 10) * getattr(searcher, "probe_iterations", 3)
    fixed = int(res.timings["n_probes"]) * n_probe
    fixed += int((diag["stage"] == "grid").sum()) * n * est.n_iterations
    step = getattr(est.get_params()["optimizer"], "refine_iterations", 2)
    fixed += int((diag["stage"] == "refine").sum()) * n * step
    return fixed, int((diag["stage"] == "converge").sum()) * n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-range", nargs=2, type=int, default=(2, 10), metavar=("LO", "HI"))
    parser.add_argument("--gmm", type=int, nargs="*", default=[], help="Gaussian-mixture graphs of these sizes")
    parser.add_argument("--graph-cache", metavar="DIR")
    parser.add_argument("--skip-real", action="store_true", help="only the Gaussian-mixture graphs")
    args = parser.parse_args()
    data = {}
    if not args.skip_real:
        import scanpy as sc

        data["pbmc68k_reduced"] = sc.datasets.pbmc68k_reduced()
        data["digits kNN-15"] = digits_graph()
    for n in args.gmm:
        data[f"gmm {n:,}"] = gaussian_mixture_graph(n, cache_dir=args.graph_cache)

    print(
        "| graph | optimizer | consistent counts | IC per count | Leiden calls | iterations (fixed) "
        "+ converged calls | wall |\n|---|---|---|---|---|---|---|"
    )
    for name, X in data.items():
        sets = {}
        for optimizer in ("refine", "converge"):
            est = scice.SCICE(cluster_range=tuple(args.cluster_range), optimizer=optimizer, random_state=0)
            t0 = time.perf_counter()
            est.fit(X)
            wall = time.perf_counter() - t0
            res = est.results_
            consistent = [int(k) for k in res.consistent(threshold=1.005)]
            sets[optimizer] = consistent
            ics = ", ".join(f"{int(c.n_cluster)}: {c.ic:.4f}" for c in res.clusters)
            fixed, converged = iterations(est)
            print(
                f"| {name} | {optimizer} | {consistent} | {ics} | {int(res.timings['n_leiden_calls']):,} | "
                f"{fixed:,} + {converged:,} | {wall:.1f} s |"
            )
        print(f"<!-- {name}: consistent sets {'agree' if sets['refine'] == sets['converge'] else 'DIFFER'} -->")


if __name__ == "__main__":
    main()
