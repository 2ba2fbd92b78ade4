"""
A custom IC scorer: adjusted Rand index instead of element-centric similarity
=============================================================================

The inconsistency coefficient is ``IC = 1 / (p^T S p)``, where ``p`` are the
frequencies of the distinct partitions among the Leiden trials and ``S`` their
pairwise similarities. scICE uses element-centric similarity (ECS,
:class:`scice.strategies.ECSScorer`). Any similarity that is 1 for identical
partitions can replace it: subclass :class:`scice.strategies.ICScorer` and
implement ``similarity(a, b)``. :func:`scice.testing.check_strategy` runs the
scorer conformance suite on real Leiden trials before you trust it.

Here the adjusted Rand index (ARI) replaces ECS. Both scorers agree on which
cluster counts are perfectly consistent (IC = 1: every trial gave the same
partition); where the trials disagree, the two similarities weigh the
disagreement differently.

Figure (written to ``examples/out/`` or to ``$SCICE_EXAMPLES_OUT``):
``custom_scorer_ari_vs_ecs.png``: left, the IC per cluster count with each
scorer; right, the two similarities between the distinct partitions found for
the least consistent count.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import scice
from scice.testing import check_strategy

OUT = Path(os.environ.get("SCICE_EXAMPLES_OUT", Path(__file__).resolve().parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)


class ARIScorer(scice.strategies.ICScorer):
    """IC from the adjusted Rand index of two labelings.

    ARI can be negative for labelings that agree less than chance; the IC is then
    reported as infinite.
    """

    def similarity(self, a, b):
        return adjusted_rand_score(a, b)


# %%
# The conformance suite: similarity 1 for relabelled partitions and symmetric,
# IC == 1 exactly when all trials agree, a deterministic bootstrap, ... It raises
# an AssertionError naming the broken contract; silence means it passed.
check_strategy(ARIScorer())
print("ARIScorer passed scice.testing.check_strategy")

# %%
# The same analysis with both scorers (same seeds).
adata = sc.datasets.pbmc68k_reduced()
params = dict(cluster_range=(5, 10), n_trials=10, n_bootstrap=50, random_state=0)
ecs = scice.SCICE(**params).fit(adata).results_
ari = scice.SCICE(**params, scorer=ARIScorer()).fit(adata).results_

table = ecs.to_frame()[["gamma", "ic", "n_partitions"]].join(
    ari.to_frame()[["gamma", "ic", "n_partitions"]], how="outer", lsuffix="_ecs", rsuffix="_ari"
)
print(table.to_string(float_format=lambda v: f"{v:.4g}"))

# %%
# Left: IC per cluster count (markers: median bootstrap IC, bars: 5-95 % range).
# Right: for the least consistent count, the similarity of every pair of distinct
# partitions among its trials under both measures (the entries of S).
fig, (ax, ax_s) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained", gridspec_kw={"width_ratios": [3, 2]})
for res, name, color, off in (
    (ecs, "ECS (scICE default)", "tab:blue", -0.12),
    (ari, "ARI (custom ICScorer)", "tab:purple", 0.12),
):
    f = res.to_frame()
    k = f.index.to_numpy()
    ax.errorbar(
        k + off,
        f["ic"],
        yerr=[f["ic"] - f["ic_q05"], f["ic_q95"] - f["ic"]],
        fmt="o",
        color=color,
        capsize=3,
        markersize=6,
        label=name,
    )
ax.axhline(1.0, color="0.6", linewidth=0.8)
all_k = sorted(set(ecs.n_cluster.tolist()) | set(ari.n_cluster.tolist()))
ax.set_xticks(all_k)
ax.set_xlabel("Number of clusters")
ax.set_ylabel("Inconsistency coefficient (IC)")
ax.set_title("IC per cluster count")
ax.grid(color="0.92")
ax.legend(fontsize=8, frameon=False, loc="upper left")
top = max(float(np.max(ecs.to_frame()["ic_q95"])), float(np.max(ari.to_frame()["ic_q95"])))
ax.set_ylim(0.99, top + 0.02)

worst = max(ecs.clusters, key=lambda c: c.ic)
parts = worst.labelings  # the distinct partitions among its trials
pairs = [(i, j) for i in range(parts.shape[0]) for j in range(i + 1, parts.shape[0])]
if pairs:
    s_ecs = scice.strategies.ECSScorer().similarity_matrix(parts)
    s_ari = ARIScorer().similarity_matrix(parts)
    x = np.arange(len(pairs))
    ax_s.bar(x - 0.2, [s_ecs[i, j] for i, j in pairs], width=0.4, color="tab:blue", label="ECS")
    ax_s.bar(x + 0.2, [s_ari[i, j] for i, j in pairs], width=0.4, color="tab:purple", label="ARI")
    ax_s.set_xticks(x, [f"{i + 1} vs {j + 1}" for i, j in pairs])
    lo = min(min(s_ecs[i, j], s_ari[i, j]) for i, j in pairs)
    ax_s.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax_s.legend(fontsize=8, loc="upper left")
else:
    ax_s.text(0.5, 0.5, "all trials agreed", ha="center", va="center", transform=ax_s.transAxes)
ax_s.set_xlabel(f"Pair of distinct partitions (k = {worst.n_cluster}, frequencies {worst.frequencies.tolist()})")
ax_s.set_ylabel("Similarity")
ax_s.set_title(f"Pairwise similarity, k = {worst.n_cluster}")
ax_s.grid(axis="y", color="0.92")
ax_s.set_axisbelow(True)
fig.suptitle("pbmc68k_reduced: element-centric similarity vs adjusted Rand index")
fig.savefig(OUT / "custom_scorer_ari_vs_ecs.png", dpi=120)
plt.close(fig)
print(f"figure written to {OUT}")
