"""Shared fixtures: small real graphs and cheap real fits (no mocked Leiden)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


def blob_graph(n_blobs: int = 4, size: int = 40, k: int = 8, seed: int = 0, bridge: float = 0.0) -> sp.csr_matrix:
    """Symmetric kNN-style graph of ``n_blobs`` well separated groups of ``size`` cells.

    Each cell links to ``k`` random cells of its own group (weights in [0.5, 1]);
    ``bridge`` > 0 adds that many weak links between consecutive groups.
    """
    rng = np.random.default_rng(seed)
    n = n_blobs * size
    rows, cols, vals = [], [], []
    for b in range(n_blobs):
        members = np.arange(b * size, (b + 1) * size)
        for i in members:
            nbrs = rng.choice(members[members != i], size=k, replace=False)
            rows.extend([i] * k)
            cols.extend(nbrs.tolist())
            vals.extend(rng.uniform(0.5, 1.0, size=k).tolist())
        if bridge and b + 1 < n_blobs:
            for _ in range(int(bridge)):
                i = rng.integers(b * size, (b + 1) * size)
                j = rng.integers((b + 1) * size, (b + 2) * size)
                rows.append(i)
                cols.append(j)
                vals.append(0.05)
    A = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    A = A.maximum(A.T).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    return A


@pytest.fixture(scope="session")
def pbmc():
    """scanpy's bundled ``pbmc68k_reduced`` (700 cells, ``obsp['connectivities']``, ``X_umap``)."""
    sc = pytest.importorskip("scanpy")
    return sc.datasets.pbmc68k_reduced()


@pytest.fixture()
def pbmc_copy(pbmc):
    """A private copy of ``pbmc68k_reduced`` a test may modify."""
    return pbmc.copy()


@pytest.fixture(scope="session")
def blobs():
    """Four separated groups of 40 cells (160 cells) as a CSR adjacency."""
    return blob_graph()


@pytest.fixture(scope="session")
def pbmc_fit(pbmc):
    """A cheap real cluster-range fit on pbmc68k_reduced (targets 2..6, ~2 s)."""
    import scice

    return scice.SCICE(cluster_range=(2, 6), n_trials=8, n_bootstrap=30, random_state=0).fit(pbmc)


@pytest.fixture(scope="session")
def pbmc_manual_fit(pbmc):
    """A cheap real manual-resolution fit with inconsistent counts (IC > 1)."""
    import scice

    return scice.SCICE(resolution=[0.005, 0.02, 0.05], n_trials=8, n_bootstrap=30, random_state=0).fit(pbmc)
