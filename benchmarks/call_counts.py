"""Probes and Leiden calls of the search's original stopping rule against scice's adaptive one.

Usage::

    python benchmarks/call_counts.py                       # pbmc68k_reduced, digits, two synthetic graphs
    python benchmarks/call_counts.py --datasets pbmc digits --cluster-range 2 20

Runs the same fit (defaults, ``random_state=0``, ``n_jobs=1``) on each graph with

1. the search's original stopping rule (``searcher__plateau_fraction=0``: every
   interval boundary bisected down to ``resolution_tolerance``), and
2. the defaults (a boundary stops once it is within 10 % of the width of the
   k region, measured in log(gamma)),

and prints, for each, the probes, the Leiden calls of the search and of the
targets (grid and refinement), the wall time, and, per final count, whether the
two fits agree: the same counts, the same ICs to 1e-12, and otherwise the
resolutions each chose. The other rules (probes shared by all targets and
dispatched in rounds, the grid starting at the search's hint and stopping at the
first IC == 1) have no switch; design.md describes them.
Not part of the test-suite.
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

CONFIGS = {
    "original stop (plateau_fraction=0)": {"searcher__plateau_fraction": 0.0},
    "defaults (plateau_fraction=0.1)": {},
}


def load(name: str, cache: str | None):
    """The graph called ``name``: pbmc68k_reduced, the digits kNN graph or a Gaussian mixture."""
    if name == "pbmc":
        import scanpy as sc

        return sc.datasets.pbmc68k_reduced()
    if name == "digits":
        return digits_graph()
    if name == "gmm3k":  # 12 overlapping Gaussians (the scale benchmarks' graph), 3,000 cells
        return gaussian_mixture_graph(3000, cache_dir=cache)
    if name == "gmm3k-separated":  # the same with spread 1.3: several components, sharper clusters
        return gaussian_mixture_graph(3000, spread=1.3, cache_dir=cache)
    raise ValueError(name)


def fit(X, cluster_range, random_state, params):
    est = scice.SCICE(cluster_range=cluster_range, random_state=random_state).set_params(**params)
    t0 = time.perf_counter()
    est.fit(X)
    return est.results_, time.perf_counter() - t0


def by_count(results) -> dict[int, tuple[float, float]]:
    return {c.n_cluster: (c.ic, c.gamma) for c in results.clusters}


def compare(res, ref) -> str:
    """How ``res`` differs from ``ref`` count by count ("same" when counts and ICs agree)."""
    a, b = by_count(res), by_count(ref)
    if a.keys() == b.keys() and all(abs(a[k][0] - b[k][0]) <= 1e-12 for k in a):
        return "same counts and ICs"
    parts = []
    for k in sorted(a.keys() | b.keys()):
        if k not in a or k not in b:
            parts.append(f"k={k} only in {'this fit' if k in a else 'the defaults'}")
        elif abs(a[k][0] - b[k][0]) > 1e-12:
            parts.append(f"k={k}: IC {a[k][0]:.4f} at gamma {a[k][1]:.4g} vs {b[k][0]:.4f} at {b[k][1]:.4g}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["pbmc", "digits", "gmm3k", "gmm3k-separated"],
        choices=["pbmc", "digits", "gmm3k", "gmm3k-separated"],
    )
    parser.add_argument("--cluster-range", nargs=2, type=int, default=(2, 10), metavar=("LO", "HI"))
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--graph-cache", metavar="DIR", help="keep the synthetic graphs here")
    args = parser.parse_args()

    print(
        f"{'graph':<16} {'configuration':<36} {'probes':>6} {'search calls':>12} {'target calls':>12} "
        f"{'all calls':>9} {'wall':>7}  against the defaults"
    )
    for name in args.datasets:
        X = load(name, args.graph_cache)
        fits = {c: fit(X, tuple(args.cluster_range), args.random_state, p) for c, p in CONFIGS.items()}
        ref = fits["defaults (plateau_fraction=0.1)"][0]
        for config, (res, wall) in fits.items():
            t = res.timings
            n_probes = int(t["n_probes"])
            search_calls = n_probes * 10  # n_probe_trials
            calls = int(t["n_leiden_calls"])
            verdict = "(reference)" if res is ref else compare(res, ref)
            print(
                f"{name:<16} {config:<36} {n_probes:>6} {search_calls:>12,} {calls - search_calls:>12,} "
                f"{calls:>9,} {wall:>6.1f}s  {verdict}",
                flush=True,
            )


if __name__ == "__main__":
    main()
