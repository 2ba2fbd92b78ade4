"""
Choosing k with scice
=====================

Which number of clusters should you report? On ``pbmc68k_reduced`` (700 cells,
ships with scanpy) this example answers with scice's scanpy-style namespaces:

1. :func:`scice.tl.scice` runs Leiden many times for every target count 2..10
   and writes the results to ``adata.uns["scICE"]`` and the labels of every
   consistent count to ``adata.obs["scICE_k<k>"]`` (ids aligned across k);
2. :func:`scice.pl.ic`: which counts are reproducible (IC below 1.005);
3. :func:`scice.pl.tree`: how the clusters split from one count to the next;
4. :func:`scice.pl.stability`: which cells an inconsistent count cannot place;
5. :func:`scice.get.leiden_params`: rerun the chosen partition with ``sc.tl.leiden``.

Figures (written to ``examples/out/`` or to ``$SCICE_EXAMPLES_OUT``):
``choosing_k_ic.png``, ``choosing_k_tree.png``, ``choosing_k_stability.png``,
``choosing_k_umap.png``.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import scice

OUT = Path(os.environ.get("SCICE_EXAMPLES_OUT", Path(__file__).resolve().parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)

# %%
# Run scICE on the neighbour graph ``sc.pp.neighbors`` made
# (``adata.obsp["connectivities"]``), in place, as a scanpy tool.
adata = sc.datasets.pbmc68k_reduced()
scice.tl.scice(adata, cluster_range=(2, 10), random_state=0)
table = scice.get.results_df(adata)
print(table[["gamma", "ic", "ic_q05", "ic_q95", "n_partitions", "consistent"]].to_string(float_format="{:.4g}".format))

# %%
# The IC per count. Every count but one is reproducible (IC = 1: every seed gave
# the same partition); at the inconsistent one the seeds disagree.
ax = scice.pl.ic(adata, show=False, title="pbmc68k_reduced: consistency per cluster count")
ax.figure.savefig(OUT / "choosing_k_ic.png", dpi=150, bbox_inches="tight")

# %%
# The tree of clusters across counts: one row per count, nodes sized by cells
# and coloured by their mean per-cell consistency. The ids are the aligned ids
# of the ``obs`` columns: a cluster keeps its id while it stays (or while it is
# the largest part of a split), so a colour in ``sc.pl.umap`` keeps its meaning.
ax = scice.pl.tree(adata, show=False)
ax.figure.savefig(OUT / "choosing_k_tree.png", dpi=150, bbox_inches="tight")

# %%
# Per-cell consistency of the inconsistent count next to the finest consistent
# one: the cells it cannot place are the ones to be careful about.
results = scice.get.results_df(adata)
best = int(results.index[results.consistent].max())
inconsistent = results.index[~results.consistent].tolist()
fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6), layout="constrained")
scice.pl.stability(adata, k=best, ax=axes[0], show=False)
if inconsistent:
    scice.pl.stability(adata, k=int(inconsistent[0]), ax=axes[1], show=False)
else:
    axes[1].set_axis_off()
fig.savefig(OUT / "choosing_k_stability.png", dpi=150, bbox_inches="tight")

# %%
# The consistent labels in scanpy's own plots (the ids of k - 1 keep their
# colours at k: one cluster splits, the others stay), and the hand-off: ``sc.tl.leiden``
# with the arguments of :func:`scice.get.leiden_params` gives scice's partition.
kwargs = scice.get.leiden_params(adata, best)
sc.tl.leiden(adata, key_added="leiden_scice", **kwargs)
ari = adjusted_rand_score(adata.obs[f"scICE_k{best}"], adata.obs["leiden_scice"])
print(f"sc.tl.leiden(**{kwargs}) vs scice at k={best}: ARI = {ari:.3f}")
fig = sc.pl.umap(
    adata,
    color=[f"scICE_k{best - 1}", f"scICE_k{best}"],
    legend_loc="on data",
    show=False,
    return_fig=True,
)
fig.savefig(OUT / "choosing_k_umap.png", dpi=150, bbox_inches="tight")
plt.close("all")
