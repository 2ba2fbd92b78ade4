"""How close ``SCICE.estimate_cost`` comes to the fit it estimates.

Usage::

    python benchmarks/estimate_cost.py pbmc                       # pbmc68k_reduced, range 2..10
    python benchmarks/estimate_cost.py digits                     # digits kNN-15 graph, range 2..10
    python benchmarks/estimate_cost.py gmm --n-cells 20000 --cluster-range 10 14 --n-trials 8 --n-steps 5
        --max-iterations 20 --n-probe-trials 4 --graph-cache DIR          # (one line)

Prints the estimate, then fits with the same parameters and prints, per stage
(search probes, grid trial sets, refinement trial sets), the estimated and the
real Leiden calls, the wall times and their ratio, and what the estimate cost
as a share of the fit. The per-stage counts of a fit are the data the
estimate's constants (``scice._cost``) were calibrated on. Not part of the
test-suite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import load_graph  # noqa: E402

import scice  # noqa: E402


def stage_calls(results, n_trials: int, n_probe_trials: int) -> dict[str, int]:
    """Leiden calls of a fit by stage, from its diagnostics."""
    diag = results.optimization_diagnostics
    grid = int((diag["stage"] == "grid").sum()) if len(diag) else 0
    refine = int((diag["stage"] == "refine").sum()) if len(diag) else 0
    manual = int((diag["stage"] == "manual").sum()) if len(diag) else 0
    probes = int(results.timings.get("n_probes", 0))
    return {
        "search": probes * n_probe_trials,
        "grid": (grid + manual) * n_trials,
        "refine": refine * n_trials,
        "probes": probes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["pbmc", "digits", "gmm"])
    parser.add_argument("--n-cells", type=int, default=20_000, help="gmm only")
    parser.add_argument("--cluster-range", nargs=2, type=int, default=(2, 10), metavar=("LO", "HI"))
    parser.add_argument("--n-trials", type=int, default=15)
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--n-steps", type=int, default=11)
    parser.add_argument("--max-iterations", type=int, default=150)
    parser.add_argument("--n-probe-trials", type=int, default=10)
    parser.add_argument("--optimizer", default="refine")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--graph-cache", metavar="DIR")
    args = parser.parse_args()

    X = load_graph(args.dataset, args.n_cells, args.graph_cache)
    est = scice.SCICE(
        cluster_range=tuple(args.cluster_range),
        n_trials=args.n_trials,
        n_bootstrap=args.n_bootstrap,
        max_iterations=args.max_iterations,
        optimizer=args.optimizer,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
    ).set_params(optimizer__n_steps=args.n_steps, searcher__n_probe_trials=args.n_probe_trials)

    t0 = time.perf_counter()
    cost = est.estimate_cost(X)
    t_estimate = time.perf_counter() - t0
    print(cost)
    t0 = time.perf_counter()
    est.fit(X)
    wall = time.perf_counter() - t0
    real = stage_calls(est.results_, args.n_trials, args.n_probe_trials)
    print(f"\n{'stage':<8} {'estimated calls':>15} {'real calls':>10}")
    for stage, guess in (("search", cost.search_calls), ("grid", cost.grid_calls), ("refine", cost.refine_calls)):
        print(f"{stage:<8} {guess:>15,} {real[stage]:>10,}")
    print(f"{'all':<8} {cost.leiden_calls:>15,} {int(est.results_.timings['n_leiden_calls']):>10,}")
    print(
        f"wall: estimated {cost.seconds:.1f} s (max {cost.seconds_max:.1f} s), real {wall:.1f} s, "
        f"ratio real/estimate {wall / cost.seconds:.2f}; the estimate took {t_estimate:.2f} s "
        f"({t_estimate / wall:.1%} of the fit); probes {real['probes']}; "
        f"counts {est.results_.n_cluster.tolist()}"
    )


if __name__ == "__main__":
    main()
