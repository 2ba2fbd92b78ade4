"""
Manual resolution mode: evaluate Leiden resolutions you choose
==============================================================

Instead of searching for target cluster counts, ``SCICE(resolution=[...])``
evaluates the given Leiden (CPM) resolutions directly: ``n_trials`` seeded
Leiden runs per resolution, the inconsistency coefficient (IC) of the runs and
its bootstrap distribution. Repeated resolutions are evaluated once, and the
results are keyed by their final cluster count: when two resolutions give the
same count, the one with the lower IC is kept.

Useful CPM resolutions on a kNN ``connectivities`` graph are about 1e-5 .. 1e-2.

Figures (written to ``examples/out/`` or to ``$SCICE_EXAMPLES_OUT``):

* ``manual_resolution_counts.png``: cluster count and IC of every resolution;
* ``manual_resolution_ic.png``: :func:`scice.plot_ic` of the returned counts.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc

import scice

OUT = Path(os.environ.get("SCICE_EXAMPLES_OUT", Path(__file__).resolve().parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)

# %%
# Evaluate ten resolutions (the last one given twice) on scanpy's bundled 700-cell PBMC data.
adata = sc.datasets.pbmc68k_reduced()
resolutions = [5e-5, 1e-4, 2e-4, 4e-4, 6e-4, 1.15e-3, 2e-3, 3e-3, 4e-3, 5e-3, 5e-3]
est = scice.SCICE(resolution=resolutions, n_trials=10, n_bootstrap=50, random_state=0)
est.fit(adata)
res = est.results_

print("deduplicated input:", res.resolution_input.tolist())
diag = res.resolution_diagnostics
print(diag[["gamma", "median_count", "n_cluster", "ic", "status"]].to_string(float_format=lambda v: f"{v:.4g}"))
print(res.to_frame()[["gamma", "ic", "ic_q05", "ic_q95", "n_partitions"]].to_string(float_format=lambda v: f"{v:.4g}"))

# %%
# Cluster count and IC per resolution. Filled markers are the returned results;
# open markers were evaluated but dropped because another resolution gave the
# same count with a lower IC (on a tie, the earlier resolution is kept).
fig, (ax_k, ax_ic) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, layout="constrained")
returned = diag["status"].to_numpy() == "returned"
gam = diag["gamma"].to_numpy()
ax_k.plot(gam, diag["n_cluster"], color="0.75", linewidth=1, zorder=1)
ax_k.scatter(gam[returned], diag["n_cluster"][returned], color="tab:blue", zorder=3, label="returned")
ax_k.scatter(
    gam[~returned],
    diag["n_cluster"][~returned],
    facecolor="white",
    edgecolor="tab:blue",
    zorder=3,
    label="dropped: same count, IC not lower",
)
ax_k.set_ylabel("Final number of clusters")
ax_k.set_title("pbmc68k_reduced: manual resolution mode (CPM, 10 trials each)")
ax_k.legend(loc="upper left", fontsize=8, frameon=False)
ax_k.grid(color="0.92")

ax_ic.scatter(gam[returned], diag["ic"][returned], color="tab:red", zorder=3)
ax_ic.scatter(gam[~returned], diag["ic"][~returned], facecolor="white", edgecolor="tab:red", zorder=3)
ax_ic.axhline(1.005, color="0.4", linestyle="--", linewidth=1, label="threshold 1.005")
ax_ic.set_xscale("log")
ax_ic.set_xlabel("Leiden resolution γ (CPM)")
ax_ic.set_ylabel("IC (median of bootstrap)")
ax_ic.legend(loc="upper left", fontsize=8, frameon=False)
ax_ic.grid(color="0.92")
ax_ic.set_ylim(0.995, max(1.02, float(np.nanmax(diag["ic"])) + 0.005))
fig.savefig(OUT / "manual_resolution_counts.png", dpi=120)
plt.close(fig)

# %%
# The bootstrap IC distribution of each returned count, with its resolution on top.
fig, ax = scice.plot_ic(
    res, threshold=1.005, show_gamma=True, title="pbmc68k_reduced: IC of the manually chosen resolutions"
)
fig.savefig(OUT / "manual_resolution_ic.png", dpi=120)
plt.close(fig)
print(f"figures written to {OUT}")
