"""Shared fixtures: small real graphs and cheap real fits (no mocked Leiden)."""

from __future__ import annotations

import pytest
import scipy.sparse as sp

from scice.testing import make_blob_graph


def blob_graph(n_blobs: int = 4, size: int = 40, k: int = 8, seed: int = 0, bridge: float = 0.0) -> sp.csr_matrix:
    """Symmetric kNN-style graph of ``n_blobs`` groups of ``size`` cells.

    :func:`scice.testing.make_blob_graph` with test defaults: each cell links to
    ``k`` random cells of its own group; ``bridge`` > 0 adds that many weak links
    between consecutive groups (0: the groups are disconnected).
    """
    return make_blob_graph(n_blobs, size, k, seed, n_bridges=int(bridge))


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
