"""scice: which clusterings of a single-cell graph can you trust.

The inconsistency coefficient (IC) of repeated Leiden clustering, after scICE.
As in scanpy, ``scice.tl`` runs it on an AnnData, ``scice.pl`` plots the
results and ``scice.get`` reads them back.

Names are imported on first use (PEP 562), so a worker process that only runs
Leiden (:mod:`scice._worker`) does not pay for importing scikit-learn, pandas
and anndata.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("scice")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

# public name -> module that defines it
_EXPORTS = {
    "SCICE": "._estimator",
    "SCICEResults": "._results",
    "ClusterResult": "._results",
    "CostEstimate": "._cost",
    "to_legacy_dict": ".legacy",
    "from_legacy_dict": ".legacy",
    "write_uns": ".legacy",
    "plot_ic": ".pl",
    "plot_stability": ".pl",
    "get_robust_labels": "._api",
    "scice_clustering": "._api",
    "scICE_clustering": "._api",
}
_SUBMODULES = {"strategies", "legacy", "tl", "pl", "get", "testing", "cli", "exceptions"}

__all__ = [
    "SCICE",
    "SCICEResults",
    "ClusterResult",
    "CostEstimate",
    "strategies",
    "legacy",
    "tl",
    "pl",
    "get",
    "exceptions",
    "to_legacy_dict",
    "from_legacy_dict",
    "write_uns",
    "plot_ic",
    "plot_stability",
    "get_robust_labels",
    "scice_clustering",
    "scICE_clustering",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'scice' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import exceptions, get, legacy, pl, strategies, tl
    from ._api import get_robust_labels, scICE_clustering, scice_clustering
    from ._cost import CostEstimate
    from ._estimator import SCICE
    from ._results import ClusterResult, SCICEResults
    from .legacy import from_legacy_dict, to_legacy_dict, write_uns
    from .pl import plot_ic, plot_stability
