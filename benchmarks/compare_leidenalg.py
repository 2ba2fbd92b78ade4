"""Same work, two Leiden backends: leidenalg (the legacy tool's) vs igraph (ours).

Runs a SCICE fit, then replays the Leiden work of its search probes and its
optimisation grid (same graph, same resolutions, same trial and iteration
counts) once with ``leidenalg.find_partition`` and once with igraph's
``community_leiden``, and prints the time of each and the ratio.

Usage::

    python benchmarks/compare_leidenalg.py                      # pbmc68k_reduced, range 2..10
    python benchmarks/compare_leidenalg.py --n-cells 10000      # Gaussian mixture graph

Not part of the test-suite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scice  # noqa: E402
from scice._graph import graph_from_input, to_igraph  # noqa: E402


def replay(g, work, backend: str) -> tuple[float, int]:
    import leidenalg as la

    calls, t0 = 0, time.perf_counter()
    for gamma, n_trials, n_iterations, beta in work:
        for seed in range(1, n_trials + 1):
            if backend == "leidenalg":
                la.find_partition(
                    g,
                    la.CPMVertexPartition,
                    weights="weight",
                    resolution_parameter=gamma,
                    n_iterations=n_iterations,
                    seed=seed,
                )
            else:
                g.community_leiden(
                    objective_function="CPM", weights="weight", resolution=gamma, beta=beta, n_iterations=n_iterations
                )
            calls += 1
    return time.perf_counter() - t0, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-cells", type=int, default=0, help="0 = pbmc68k_reduced")
    parser.add_argument("--cluster-range", nargs=2, type=int, default=(2, 10), metavar=("LO", "HI"))
    parser.add_argument("--max-sets", type=int, default=0, help="replay at most this many trial sets (0 = all)")
    args = parser.parse_args()

    if args.n_cells:
        from _graphs import gaussian_mixture_graph

        adata = gaussian_mixture_graph(args.n_cells)
        name = f"Gaussian mixture, {args.n_cells} cells"
    else:
        import scanpy as sc

        adata = sc.datasets.pbmc68k_reduced()
        name = "pbmc68k_reduced"
    est = scice.SCICE(cluster_range=tuple(args.cluster_range), random_state=0)
    t0 = time.perf_counter()
    est.fit(adata)
    fit_wall = time.perf_counter() - t0
    res = est.results_
    probes = res.resolution_search_diagnostics
    grid = res.optimization_diagnostics
    grid = grid[grid["stage"] == "grid"]
    work = [(float(g), 10, 3, 0.01) for g in probes["gamma"] if g > 0]
    work += [(float(g), est.n_trials, est.n_iterations, est.beta) for g in grid["gamma"]]
    if args.max_sets:
        work = work[: args.max_sets]
    g = to_igraph(graph_from_input(adata, "connectivities"))
    t_ig, n = replay(g, work, "igraph")
    t_la, _ = replay(g, work, "leidenalg")
    print(
        f"{name}: scice fit (range {tuple(args.cluster_range)}) {fit_wall:.1f} s, "
        f"{int(res.timings['n_leiden_calls'])} Leiden calls"
    )
    print(f"replayed {len(work)} trial sets = {n} Leiden calls (search probes + optimisation grid)")
    print(f"  igraph community_leiden : {t_ig:8.2f} s  ({1e3 * t_ig / n:.1f} ms/call)")
    print(f"  leidenalg find_partition: {t_la:8.2f} s  ({1e3 * t_la / n:.1f} ms/call)")
    print(f"  ratio leidenalg / igraph: {t_la / t_ig:.1f}x")
    est_legacy = res.timings["leiden_seconds"] * t_la / t_ig
    print(
        f"the whole fit's Leiden work with leidenalg would take ~{est_legacy:.0f} s "
        f"(ours: {res.timings['leiden_seconds']:.1f} s in Leiden, {fit_wall:.1f} s wall)"
    )


if __name__ == "__main__":
    main()
