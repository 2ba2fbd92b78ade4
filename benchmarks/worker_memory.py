"""Peak memory of a worker process per graph edge, measured in a fresh process.

Usage::

    python benchmarks/worker_memory.py --n-cells 10000 50000 --graph-cache DIR

For each graph (the Gaussian mixtures of ``bench_scale.py``) a fresh Python
process does what a scice worker does: it imports the worker module, receives
the graph's arrays by pickle (as a chunk brings them), builds the igraph object
and runs one grid-style Leiden trial (``n_iterations=10``) and one refinement
trial continuing it (2 iterations). It prints its resident memory (VmRSS) after
each step and its peak (VmHWM), and the peak above the idle process per edge,
next to what scice's memory model assumes per worker. Linux only; not part of
the test-suite.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

_CHILD = r"""
import pickle, sys
import numpy as np

def status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

from scice import _worker
_worker.build_igraph(3, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0]))  # warm up, as the first chunk does
idle = status("VmRSS")
with open(sys.argv[1], "rb") as fh:
    payload = fh.read()
arrays = pickle.loads(payload)
del payload
received = status("VmRSS")
out = _worker.run_trials("bench", arrays, "CPM", float(sys.argv[2]), 0.01, 10, np.array([1]))
del arrays
built = status("VmRSS")
labels = out[0]
_worker.run_trials("bench", None, "CPM", float(sys.argv[2]), 0.01, 2, np.array([2]), initial=labels)
print(idle, received, built, status("VmRSS"), status("VmHWM"))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-cells", type=int, nargs="+", default=[10_000])
    parser.add_argument("--resolution", type=float, default=None, help="CPM resolution (default: 2 / n_cells)")
    parser.add_argument("--graph-cache", metavar="DIR")
    args = parser.parse_args()

    from _graphs import gaussian_mixture_graph

    from scice._graph import graph_from_input
    from scice._memory import _EDGE_BYTES, WORKER_BASELINE_BYTES
    from scice._worker import GraphArrays

    mib = 2**20
    print("cells | edges | idle MiB | +arrays | +igraph, 1 call | peak MiB | peak above idle, bytes/edge | model")
    for n_cells in args.n_cells:
        adata = gaussian_mixture_graph(n_cells, cache_dir=args.graph_cache)
        graph = graph_from_input(adata.obsp["connectivities"], "connectivities")
        arrays = GraphArrays(graph.n_vertices, graph.sources, graph.targets, graph.weights)
        gamma = args.resolution if args.resolution is not None else 2.0 / n_cells
        with tempfile.NamedTemporaryFile(suffix=".pkl") as fh:
            fh.write(pickle.dumps(arrays, protocol=pickle.HIGHEST_PROTOCOL))
            fh.flush()
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, fh.name, repr(gamma)], check=True, capture_output=True, text=True
            )
        idle, received, built, after, peak = (int(v) for v in out.stdout.split())
        per_edge = (peak - idle) / graph.n_edges
        model = WORKER_BASELINE_BYTES + graph.n_edges * _EDGE_BYTES + graph.n_vertices * 8
        print(
            f"{n_cells:,} | {graph.n_edges:,} | {idle / mib:.0f} | {received / mib:.0f} | {built / mib:.0f} | "
            f"{peak / mib:.0f} | {per_edge:.0f} | {model / mib:.0f} MiB ({_EDGE_BYTES} bytes/edge)"
        )


if __name__ == "__main__":
    main()
