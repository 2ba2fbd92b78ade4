"""
Quick start: which cluster counts of pbmc68k_reduced can you trust?
===================================================================

Runs scICE on the neighbour graph that ships with scanpy's ``pbmc68k_reduced``
(700 cells), for target cluster counts 2..10, and prints the IC table: counts
with IC close to 1 are reproducible across Leiden seeds.
"""

import time

import scanpy as sc

import scice

adata = sc.datasets.pbmc68k_reduced()
est = scice.SCICE(cluster_range=(2, 10), n_trials=15, n_bootstrap=100, random_state=0)
t0 = time.perf_counter()
est.fit(adata)
elapsed = time.perf_counter() - t0

table = est.results_.to_frame()[["gamma", "ic", "ic_q05", "ic_q95", "n_partitions"]]
print(table.to_string(float_format=lambda v: f"{v:.4g}"))
print(f"\nconsistent (IC < 1.005): {est.results_.consistent(threshold=1.005).tolist()}")
print(f"best cluster count: {est.best_cluster_} (gamma {est.best_resolution_:.4g})")
print(f"fit took {elapsed:.1f} s, {int(est.results_.timings['n_leiden_calls'])} Leiden calls")
