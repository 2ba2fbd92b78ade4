"""What the refinement schedule costs and gives: per target IC, n_iter, rounds and Leiden calls.

Usage::

    python benchmarks/refine_schedule.py --save new.json             # this code, both datasets
    python benchmarks/refine_schedule.py --save old.json             # (run with an older checkout)
    python benchmarks/refine_schedule.py --compare old.json new.json # before/after markdown tables

Fits ``SCICE(cluster_range=(2, 10), random_state=0)`` with default parameters
and ``n_jobs=1`` on two graphs: scanpy's bundled ``pbmc68k_reduced`` and a
15-nearest-neighbour graph of scikit-learn's digits (1,797 images, symmetrised,
unit weights). For each target it prints the final IC, ``n_iter``, the
refinement rounds (from ``optimization_diagnostics``) and the trial sets it ran
(grid points plus refined candidates, times ``n_trials`` for Leiden calls), and
per dataset the fit's Leiden calls (``timings["n_leiden_calls"]``) and wall
time. Each fit runs once; wall times are noisy on a shared machine. Not part of
the test-suite.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _graphs import digits_graph

import scice

__all__ = ["datasets", "digits_graph", "per_target"]


def datasets() -> dict:
    import scanpy as sc

    return {"pbmc68k_reduced": sc.datasets.pbmc68k_reduced(), "digits kNN-15": digits_graph()}


def per_target(results) -> dict[str, dict]:
    """``{target: {ic, n_cluster, n_iter, rounds, trial_sets, stop}}`` from a fit's results."""
    diag = results.optimization_diagnostics
    by_source = {c.source_target_cluster: c for c in results.clusters}
    out = {}
    for target in results.requested_cluster_range:
        rows = diag[diag["target"] == target] if len(diag) else diag
        ran = rows[rows["stage"].isin(["grid", "refine"])] if len(rows) else rows
        refine = rows[rows["stage"].isin(["refine", "frozen"])] if len(rows) else rows
        chosen = rows[rows["stage"] == "chosen"] if len(rows) else rows
        c = by_source.get(int(target))
        out[str(int(target))] = {
            "n_cluster": None if c is None else int(c.n_cluster),
            "ic": None if c is None else float(c.ic),
            "n_iter": None if c is None else int(c.n_iter),
            "rounds": int(refine["round"].max()) if len(refine) else 0,
            "trial_sets": int(len(ran)),
            "stop": str(chosen["stop"].iloc[0]) if len(chosen) and "stop" in chosen else "",
        }
    return out


def run(name: str, data) -> dict:
    est = scice.SCICE(cluster_range=(2, 10), n_jobs=1, random_state=0)
    t0 = time.perf_counter()
    est.fit(data)
    wall = time.perf_counter() - t0
    r = est.results_
    return {
        "dataset": name,
        "wall_seconds": wall,
        "n_leiden_calls": int(r.timings["n_leiden_calls"]),
        "n_trials": int(r.params["n_trials"]),
        "best_cluster": int(r.best_cluster) if r.best_cluster is not None else None,
        "targets": per_target(r),
    }


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _pair(old: dict | None, new: dict, key: str, spec: str = "") -> str:
    if old is None:
        return _fmt(new[key], spec)
    return f"{_fmt(old[key], spec)} / {_fmt(new[key], spec)}"


def table(new: dict, old: dict | None = None) -> str:
    """A markdown table for one dataset; with ``old``, each cell reads ``old / new``."""
    lines = [
        f"**{new['dataset']}**: Leiden calls {_pair(old, new, 'n_leiden_calls')}, "
        f"wall {_pair(old, new, 'wall_seconds', '.1f')} s, best_cluster {_pair(old, new, 'best_cluster')}",
        "",
        "| target | final count | IC | n_iter | rounds | trial sets | stop |",
        "|---|---|---|---|---|---|---|",
    ]
    for target, t in new["targets"].items():
        o = None if old is None else old["targets"].get(target)
        cells = [
            _pair(o, t, key, spec)
            for key, spec in (("n_cluster", ""), ("ic", ".4f"), ("n_iter", ""), ("rounds", ""), ("trial_sets", ""))
        ]
        stop = t["stop"] if o is None or not o["stop"] else f"{o['stop']} / {t['stop']}"
        lines.append(f"| {target} | " + " | ".join(cells) + f" | {stop or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", type=Path, help="write this run's numbers to a JSON file")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="print two saved runs")
    args = parser.parse_args()
    if args.compare:
        old, new = (json.loads(p.read_text()) for p in args.compare)
    else:
        old, new = None, [run(name, data) for name, data in datasets().items()]
        if args.save:
            args.save.write_text(json.dumps(new, indent=1))
    print(f"scice {scice.__version__}, numpy {np.__version__}; cells read old / new\n" if old else "")
    for i, run_new in enumerate(new):
        print(table(run_new, None if old is None else old[i]) + "\n")


if __name__ == "__main__":
    main()
