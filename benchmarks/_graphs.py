"""Synthetic cell graphs for the benchmarks: Gaussian mixtures -> kNN connectivities."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def gaussian_mixture_graph(n_cells: int, n_clusters: int = 12, n_dims: int = 30, n_neighbors: int = 15,
                           spread: float = 6.0, seed: int = 0):
    """An AnnData of ``n_cells`` points from ``n_clusters`` overlapping Gaussians.

    Cluster centres are drawn with standard deviation ``spread`` around 0 and
    points with unit variance, so neighbouring clusters touch (the graph is
    connected, as real data is). The graph is scanpy's UMAP ``connectivities`` on
    the points (``sc.pp.neighbors(use_rep="X")``).
    """
    import anndata as ad
    import scanpy as sc

    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, spread, size=(n_clusters, n_dims))
    weights = rng.dirichlet(np.full(n_clusters, 5.0))
    truth = rng.choice(n_clusters, size=n_cells, p=weights)
    x = centres[truth] + rng.normal(size=(n_cells, n_dims))
    adata = ad.AnnData(x.astype(np.float32))
    adata.obs["truth"] = truth.astype(str)
    adata.obs["truth"] = adata.obs["truth"].astype("category")
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X", random_state=seed)
    assert sp.issparse(adata.obsp["connectivities"])
    return adata
