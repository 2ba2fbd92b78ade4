"""The one AnnData adapter: what counts as an AnnData, and results from what users pass.

``_graph`` reads graphs from an AnnData, and ``legacy``, ``_api`` and ``pl`` accept
an AnnData (results in ``adata.uns[key]``), the legacy result dictionary, a
:class:`~scice.SCICEResults` or a fitted :class:`~scice.SCICE` wherever results
are asked for. All of them use the helpers here, so every entry point accepts the
same inputs and words its errors the same way.

This module imports only numpy at load time: ``_graph`` uses it on every fit,
also where pandas and anndata are not loaded yet, and ``legacy`` imports it, so
``SCICEResults`` and ``from_legacy_dict`` are imported where they are used.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._results import SCICEResults

__all__ = ["is_anndata", "check_cells_match", "coerce_results", "results_from"]


def is_anndata(obj: object) -> bool:
    """Whether ``obj`` is an :class:`anndata.AnnData` (a view or a subclass too).

    The rule is ``isinstance(obj, anndata.AnnData)``. anndata is not imported for
    it: an AnnData object cannot exist before its module has been imported, so
    when ``anndata`` is not loaded the answer is ``False``.
    """
    anndata = sys.modules.get("anndata")
    return anndata is not None and isinstance(obj, anndata.AnnData)


def check_cells_match(adata: Any, results: SCICEResults, action: str) -> None:
    """Raise if ``results`` were not computed on ``adata``'s cells (in this order).

    Parameters
    ----------
    adata : AnnData
        The AnnData the results are to be used with.
    results : SCICEResults
        The results; their ``cell_names`` are compared with ``adata.obs_names``
        when they carry them, otherwise only the number of cells.
    action : str
        What was about to happen, for the message (``"plot the results on this AnnData"``).

    Raises
    ------
    ValueError
        If the number of cells, or their names or order, differ.
    """
    obs_names = np.asarray(adata.obs_names, dtype=object)
    if results.cell_names is not None:
        names = np.asarray(results.cell_names, dtype=object)
        if names.shape != obs_names.shape:
            raise ValueError(
                f"Cannot {action}: the results describe {names.shape[0]} cells but the AnnData has "
                f"{obs_names.shape[0]} (adata.n_obs). Use the AnnData the results were computed on, or re-run "
                "scICE on this one."
            )
        mismatch = np.flatnonzero(names != obs_names)
        if mismatch.size:
            i = int(mismatch[0])
            raise ValueError(
                f"Cannot {action}: the cell names stored with the results differ from adata.obs_names "
                f"({mismatch.size} positions, first at {i}: {names[i]!r} vs {obs_names[i]!r}). Cells were "
                "subset or reordered since the fit; reorder with adata[stored_cell_names] or re-run scICE."
            )
    elif results.clusters:
        n_cells = results.clusters[0].best_labels.shape[0]
        if n_cells != obs_names.shape[0]:
            raise ValueError(
                f"Cannot {action}: the results describe {n_cells} cells but the AnnData has "
                f"{obs_names.shape[0]} (adata.n_obs)."
            )


def coerce_results(results: Any, what: str = "results") -> SCICEResults:
    """Results from a :class:`~scice.SCICEResults`, a fitted SCICE or a legacy scICE dict.

    Raises
    ------
    ValueError
        If ``results`` is a SCICE estimator that is not fitted, or a dict that
        :func:`scice.legacy.from_legacy_dict` cannot decode.
    TypeError
        For anything else; ``what`` names the argument in the message.
    """
    from ._results import SCICEResults
    from .legacy import from_legacy_dict

    if isinstance(results, SCICEResults):
        return results
    fitted = getattr(results, "results_", None)
    if isinstance(fitted, SCICEResults):
        return fitted
    if isinstance(results, Mapping):
        return from_legacy_dict(results)
    if hasattr(results, "get_params") and not hasattr(results, "results_"):
        raise ValueError(f"{what}: the SCICE estimator is not fitted yet; call .fit(adata) first.")
    raise TypeError(
        f"{what} must be a SCICEResults, a fitted SCICE estimator or a legacy scICE dict, got {type(results).__name__}."
    )


def results_from(data: Any, key: str = "scICE") -> SCICEResults:
    """Results from an AnnData (``uns[key]``), a legacy dict, results or a fitted SCICE.

    Raises
    ------
    KeyError
        If ``data`` is an AnnData without ``uns[key]``.
    """
    from .legacy import from_legacy_dict

    if is_anndata(data):
        if key not in data.uns:
            raise KeyError(
                f"No scICE results in adata.uns[{key!r}] (available keys: {sorted(map(str, data.uns.keys()))}); "
                "run scice.write_uns(adata, est.results_) / scice.scice_clustering(adata, ...) first, or pass "
                "key= if they are stored under another key."
            )
        return from_legacy_dict(data.uns[key])
    return coerce_results(data, "data")
