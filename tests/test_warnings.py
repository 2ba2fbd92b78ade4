"""Every warning scice raises names the user's line, whichever entry point they called.

Python's default filter shows a warning once per (file, line): a warning attributed
to a line inside scice would be shown once per session and point at the wrong code.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import scice
from scice.testing import blob_graph

#: Each of these inputs triggers one warning from deep inside the fit.
_TRIGGERS = {
    "isolated cells": "have no edges in the graph",
    "coarse n_trials": "gives a coarse IC",
    "self loops": "self loop",
}


def _graph() -> sp.csr_matrix:
    """Four blobs, three isolated cells, and self loops on the first cells."""
    A = sp.block_diag([blob_graph(), sp.csr_matrix((3, 3))]).tolil()
    A[0, 0] = A[1, 1] = 1.0
    return A.tocsr()


def _adata() -> ad.AnnData:
    A = _graph()
    adata = ad.AnnData(np.zeros((A.shape[0], 1), dtype=np.float32))
    adata.obsp["connectivities"] = A
    return adata


_PARAMS = {"resolution": [0.05], "n_trials": 5, "n_bootstrap": 5, "random_state": 0}

_ENTRY_POINTS = {
    "SCICE.fit": lambda: scice.SCICE(**_PARAMS).fit(_graph()),
    "SCICE.fit_predict": lambda: scice.SCICE(**_PARAMS).fit_predict(_graph()),
    "SCICE.estimate_cost": lambda: scice.SCICE(**_PARAMS).estimate_cost(_graph()),
    "tl.scice": lambda: scice.tl.scice(_adata(), **_PARAMS),
    "scice_clustering": lambda: scice.scice_clustering(_adata(), resolution=[0.05], n_trials=5, n_bootstrap=5, seed=0),
}


@pytest.mark.parametrize("entry", sorted(_ENTRY_POINTS))
def test_fit_warnings_name_the_callers_line(entry):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _ENTRY_POINTS[entry]()
    for trigger, text in _TRIGGERS.items():
        hits = [w for w in seen if text in str(w.message)]
        assert hits, f"{entry}: no {trigger} warning"
        assert {w.filename for w in hits} == {__file__}, f"{entry}: {trigger} attributed to {hits[0].filename}"


def test_other_fit_warnings_name_the_callers_line(blobs):
    from scice._memory import local_cores

    with pytest.warns(UserWarning, match="gave no result") as seen:  # one resolution shatters the graph
        scice.SCICE(resolution=[0.05, 50.0], n_trials=10, n_bootstrap=5, random_state=0).fit(blobs)
    assert [w.filename for w in seen if "gave no result" in str(w.message)] == [__file__]
    with pytest.warns(UserWarning, match="more than the .* CPU core") as seen:
        scice.SCICE(resolution=[0.05], n_trials=10, n_jobs=local_cores() + 1).estimate_cost(blobs)
    assert [w.filename for w in seen if "CPU core" in str(w.message)] == [__file__]


def test_front_end_warnings_name_the_callers_line(pbmc_manual_fit):
    results = pbmc_manual_fit.results_
    inconsistent = next(c.n_cluster for c in results.clusters if c.ic >= results.ic_threshold)
    with pytest.warns(UserWarning, match="is not consistent") as seen:
        scice.get.leiden_params(results, inconsistent)
    assert [w.filename for w in seen] == [__file__]
    with pytest.warns(UserWarning, match="No cluster count has IC below") as seen:
        scice.get_robust_labels(results, threshold=1.0)
    assert [w.filename for w in seen] == [__file__]
