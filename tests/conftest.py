"""Shared fixtures: small real graphs and cheap real fits (no mocked Leiden)."""

from __future__ import annotations

import pytest

from scice.testing import blob_graph


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
