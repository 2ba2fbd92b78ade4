"""Leiden calls for the same answer: scice's call-saving rules switched off and on.

Usage::

    python benchmarks/call_counts.py            # pbmc68k_reduced, cluster_range=(2, 10), n_jobs=1

Runs the same fit (defaults, ``random_state=0``) with

1. the search's original stopping rule (``searcher__plateau_fraction=0``: every
   interval boundary bisected down to ``resolution_tolerance``), and
2. the defaults (boundaries stop at 10 % of the width of the k region),

and prints, for each, the probes, the Leiden calls of the search and of the
targets, the wall time and whether the final counts and ICs equal the
defaults'. The other rules (probes shared by all targets, the grid starting at
the search's hint and stopping at the first IC == 1, refinement rounds that stop
once the candidates' ICs stop changing) have no switch; design.md describes them.
Not part of the test-suite.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scanpy as sc

import scice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-range", nargs=2, type=int, default=(2, 10), metavar=("LO", "HI"))
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()
    adata = sc.datasets.pbmc68k_reduced()
    configs = {
        "original search stop (plateau_fraction=0)": {"searcher__plateau_fraction": 0.0},
        "defaults": {},
    }
    fits = {}
    for name, params in configs.items():
        est = scice.SCICE(cluster_range=tuple(args.cluster_range), random_state=args.random_state)
        est.set_params(**params)
        t0 = time.perf_counter()
        est.fit(adata)
        fits[name] = (est.results_, time.perf_counter() - t0)

    ref = fits["defaults"][0]
    print(
        f"{'configuration':<44} {'probes':>6} {'search calls':>12} {'target calls':>12} "
        f"{'all calls':>9} {'wall':>7}  same counts & ICs"
    )
    for name, (res, wall) in fits.items():
        t = res.timings
        n_probe_calls = int(res.resolution_search_diagnostics.shape[0]) * 10  # 10 trials per probe
        same = np.array_equal(res.n_cluster, ref.n_cluster) and np.allclose(
            [c.ic for c in res.clusters], [c.ic for c in ref.clusters], rtol=0, atol=1e-12
        )
        print(
            f"{name:<44} {int(t['n_probes']):>6} {n_probe_calls:>12,} "
            f"{int(t['n_leiden_calls']) - n_probe_calls:>12,} {int(t['n_leiden_calls']):>9,} {wall:>6.1f}s  {same}"
        )


if __name__ == "__main__":
    main()
