"""
Quick start: consistent clusterings of pbmc68k_reduced
======================================================

The scanpy-style workflow on the 700-cell PBMC data that ships with scanpy:

1. fit :class:`scice.SCICE` for target cluster counts 2..10 on the precomputed
   neighbour graph ``adata.obsp["connectivities"]``;
2. store the results in ``adata.uns["scICE"]`` with :func:`scice.write_uns`
   (h5ad-safe);
3. plot the bootstrap IC of every cluster count with :func:`scice.plot_ic`;
4. add the labels of every consistent count (IC < 1.005) to ``adata.obs`` with
   :func:`scice.get_robust_labels` and show them on the UMAP;
5. compare them with the dataset's ``bulk_labels`` annotation (adjusted Rand
   index), and show per-cell consistency of the least consistent count with
   :func:`scice.plot_stability`.

Figures (written to ``examples/out/`` or to ``$SCICE_EXAMPLES_OUT``):
``pbmc_ic.png``, ``pbmc_umap.png``, ``pbmc_ari.png``, ``pbmc_stability.png``.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import scice

OUT = Path(os.environ.get("SCICE_EXAMPLES_OUT", Path(__file__).resolve().parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)
THRESHOLD = 1.005

# %%
# Fit. ``cluster_range=(2, 10)`` (a tuple) means every count from 2 to 10.
adata = sc.datasets.pbmc68k_reduced()
est = scice.SCICE(cluster_range=(2, 10), n_trials=10, n_bootstrap=50, random_state=0)
est.fit(adata)
print(
    est.results_.to_frame()[["gamma", "ic", "ic_q05", "ic_q95", "n_partitions"]].to_string(
        float_format=lambda v: f"{v:.4g}"
    )
)
print(
    f"consistent (IC < {THRESHOLD}): {est.results_.consistent(THRESHOLD).tolist()}; best: {est.best_cluster_} clusters"
)

# %%
# Store the results the way the legacy tool did (``adata.uns["scICE"]``); the
# dictionary survives ``adata.write_h5ad``.
scice.write_uns(adata, est.results_)

# %%
# The IC of every cluster count: boxes summarise the bootstrap ICs, diamonds are
# the reported (median) IC, coloured counts are consistent.
fig, ax = scice.plot_ic(
    adata, threshold=THRESHOLD, show_gamma=True, title="pbmc68k_reduced: clustering consistency per cluster count"
)
fig.savefig(OUT / "pbmc_ic.png", dpi=120, bbox_inches="tight")
plt.close(fig)

# %%
# Robust labels: one categorical column ``scICE_k_<k>`` per consistent count.
adata = scice.get_robust_labels(adata, threshold=THRESHOLD, return_adata=True)
columns = [c for c in adata.obs.columns if c.startswith("scICE_k_")]
print("robust label columns:", columns)

# %%
# Agreement with the cell-type annotation shipped with the data.
ari = {int(c.rsplit("_", 1)[1]): adjusted_rand_score(adata.obs["bulk_labels"], adata.obs[c]) for c in columns}
for k, value in ari.items():
    print(f"k = {k:2d}: ARI vs bulk_labels = {value:.3f}")

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
ks = np.array(list(ari))
ax.bar(ks, list(ari.values()), color="#1b9e77")
for k, value in ari.items():
    ax.text(k, value + 0.01, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
ax.set_xticks(ks)
ax.set_xlabel(f"Number of clusters (consistent counts, IC < {THRESHOLD})")
ax.set_ylabel("Adjusted Rand index vs bulk_labels")
ax.set_ylim(0, max(1.0, max(ari.values()) + 0.08) if ari else 1.0)
ax.set_title("Robust scICE labels vs the annotated cell types")
ax.grid(axis="y", color="0.92")
ax.set_axisbelow(True)
fig.savefig(OUT / "pbmc_ari.png", dpi=120)
plt.close(fig)

# %%
# The annotation and three consistent clusterings on the UMAP: the smallest
# count, the one closest to the annotation and the largest.
if ari:
    best_k = max(ari, key=ari.get)
    shown = sorted({min(ari), best_k, max(ari)})
else:
    shown = []
fig = sc.pl.umap(
    adata,
    color=["bulk_labels"] + [f"scICE_k_{k}" for k in shown],
    ncols=2,
    wspace=0.45,
    show=False,
    return_fig=True,
    title=["bulk_labels (annotation)"] + [f"scICE, k = {k} (ARI {ari[k]:.2f})" for k in shown],
)
fig.savefig(OUT / "pbmc_umap.png", dpi=110, bbox_inches="tight")
plt.close(fig)

# %%
# Per-cell consistency of the least consistent count: cells that the Leiden
# trials put with different neighbours are red.
worst = max(est.results_.clusters, key=lambda c: c.ic)
fig, ax = scice.plot_stability(adata, n_cluster=worst.n_cluster)
fig.savefig(OUT / "pbmc_stability.png", dpi=120, bbox_inches="tight")
plt.close(fig)
print(f"figures written to {OUT}")
