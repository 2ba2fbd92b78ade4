"""Time a full SCICE fit on scanpy's bundled pbmc68k_reduced.

Usage::

    python benchmarks/bench_pbmc.py                  # cluster_range=(2, 10), defaults, n_jobs=1
    python benchmarks/bench_pbmc.py --n-jobs 2 --repeat 3

Prints wall time, time inside Leiden, the share of process time outside Leiden
(serial: the parent's wall time; with workers: the workers' wall time, so idle
workers count as outside), the number of Leiden calls and the IC table. The
first fit of a process includes starting the worker pool; run the script
several times for cold-start figures. Not part of the test-suite.
"""

from __future__ import annotations

import argparse
import time

import scanpy as sc

import scice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-range", nargs=2, type=int, default=(2, 10), metavar=("LO", "HI"))
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()

    adata = sc.datasets.pbmc68k_reduced()
    walls = []
    for i in range(args.repeat):
        est = scice.SCICE(cluster_range=tuple(args.cluster_range), n_jobs=args.n_jobs, random_state=args.random_state)
        t0 = time.perf_counter()
        est.fit(adata)
        walls.append(time.perf_counter() - t0)
        t = est.results_.timings
        share = 1 - t["leiden_seconds"] / max(t["worker_seconds"], 1e-12)
        print(
            f"run {i + 1}: wall {walls[-1]:.2f} s (search {t['search_seconds']:.2f} s, targets "
            f"{t['optimize_seconds']:.2f} s) | Leiden {t['leiden_seconds']:.2f} s in "
            f"{int(t['n_leiden_calls'])} calls ({int(t['n_chunks'])} chunks sent) | scoring "
            f"{t['scoring_seconds']:.2f} s | probes {int(t['n_probes'])} | outside Leiden {share:.1%}"
        )
    print(
        f"\nn_jobs={args.n_jobs} cluster_range={tuple(args.cluster_range)}: "
        f"best of {args.repeat}: {min(walls):.2f} s, mean {sum(walls) / len(walls):.2f} s"
    )
    print(
        est.results_.to_frame()[["gamma", "ic", "ic_q05", "ic_q95", "n_partitions", "source_target_cluster"]].to_string(
            float_format=lambda v: f"{v:.4g}"
        )
    )
    print("uncovered:", est.results_.uncovered_targets)
    print("layout:", est.results_.parallel_layout)


if __name__ == "__main__":
    main()
