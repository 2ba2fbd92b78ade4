"""Synthetic cell graphs for the benchmarks: Gaussian mixtures -> kNN connectivities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp


def gaussian_mixture_graph(
    n_cells: int,
    n_clusters: int = 12,
    n_dims: int = 30,
    n_neighbors: int = 15,
    spread: float = 1.0,
    seed: int = 0,
    cache_dir: str | Path | None = None,
):
    """An AnnData of ``n_cells`` points from ``n_clusters`` overlapping Gaussians.

    Cluster centres are drawn with standard deviation ``spread`` around 0 and
    points with unit variance, so neighbouring clusters touch (the graph is
    connected, as real data is). The graph is scanpy's UMAP ``connectivities`` on
    the points (``sc.pp.neighbors(use_rep="X")``). With the defaults at 10,000
    cells the graph is one connected component and 1.8 % of its edges join
    different clusters (``spread=1.3``: 4 components; ``0.8``: 9.7 % across).

    With ``cache_dir``, the graph is saved there as ``.h5ad`` on first use and
    read back afterwards (building a 200,000-cell graph takes minutes).
    """
    import anndata as ad
    import scanpy as sc

    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"gmm_{n_cells}_{n_clusters}_{n_dims}_{n_neighbors}_{spread:g}_{seed}.h5ad"
        if cached.exists():
            return ad.read_h5ad(cached)

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
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        adata.write_h5ad(cached)
    return adata


def digits_graph(n_neighbors: int = 15) -> sp.csr_matrix:
    """Symmetrised unit-weight kNN graph of ``sklearn.datasets.load_digits`` (1,797 cells)."""
    from sklearn.datasets import load_digits
    from sklearn.neighbors import kneighbors_graph

    knn = kneighbors_graph(load_digits().data, n_neighbors=n_neighbors, mode="connectivity", include_self=False)
    return knn.maximum(knn.T).tocsr()


def load_graph(name: str, n_cells: int = 10_000, cache_dir: str | Path | None = None):
    """A benchmark graph by name: ``"pbmc"`` (pbmc68k_reduced), ``"digits"`` or ``"gmm"`` (``n_cells`` cells)."""
    if name == "pbmc":
        import scanpy as sc

        return sc.datasets.pbmc68k_reduced()
    if name == "digits":
        return digits_graph()
    if name == "gmm":
        return gaussian_mixture_graph(n_cells, cache_dir=cache_dir)
    raise ValueError(f"unknown graph {name!r}: use pbmc, digits or gmm")
