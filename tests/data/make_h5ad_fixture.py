"""Write the small .h5ad fixture of this anndata line (run once per line; output committed).

    python tests/data/make_h5ad_fixture.py

writes ``tests/data/anndata-<major.minor>.h5ad``: 120 cells of a real blob graph in
``obsp["connectivities"]``, obs columns in every encoding the CLI must read
(categorical, non-ASCII strings, nullable integers and booleans), a small dense
``X`` and ``uns["scICE"]`` from a real manual-resolution fit. anndata 0.13 with
pandas 3 stores the index and string columns as ``nullable-string-array`` groups;
anndata 0.12 with pandas 2 as string datasets.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

import scice
from scice.testing import make_blob_graph

#: The fit stored in every fixture; tests refit it and compare.
FIXTURE_FIT = {"resolution": [0.02, 0.2], "n_trials": 6, "n_bootstrap": 20, "random_state": 0, "ic_threshold": 1.005}


def fixture_adata() -> ad.AnnData:
    """The AnnData of the fixture, without results."""
    graph = make_blob_graph(n_blobs=3, size=40, k=6, seed=5, n_bridges=2)
    n = graph.shape[0]
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {
            "tissue": pd.Categorical(np.repeat(["Gehirn", "Lunge", "Milz"], 40)),
            "donor_note": [f"Spender-{i}-München-细胞" for i in range(n)],  # unique: stays a string column
            "n_umi": pd.array([None if i % 7 == 0 else int(i * 3) for i in range(n)], dtype="Int64"),
            "doublet": pd.array([None if i % 11 == 0 else bool(i % 2) for i in range(n)], dtype="boolean"),
        },
        index=pd.Index([f"zelle-{i}-ä" for i in range(n)]),
    )
    var = pd.DataFrame(index=[f"GEN{i}" for i in range(5)])
    adata = ad.AnnData(X=rng.random((n, 5)).astype(np.float32), obs=obs, var=var)
    adata.obsp["connectivities"] = graph
    return adata


def main() -> Path:
    adata = fixture_adata()
    est = scice.SCICE(**FIXTURE_FIT).fit(adata)
    scice.write_uns(adata, est.results_)
    major_minor = ".".join(version("anndata").split(".")[:2])
    out = Path(__file__).with_name(f"anndata-{major_minor}.h5ad")
    adata.write_h5ad(out)
    return out


if __name__ == "__main__":
    print(main())
