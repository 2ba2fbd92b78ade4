"""scice: which clusterings of a single-cell graph can you trust?

The inconsistency coefficient (IC) of repeated Leiden clustering, after scICE.
"""

from importlib.metadata import PackageNotFoundError, version

from . import legacy, pl, strategies
from ._api import get_robust_labels, scICE_clustering, scice_clustering
from ._estimator import SCICE
from ._results import ClusterResult, SCICEResults
from .legacy import from_legacy_dict, to_legacy_dict, write_uns
from .pl import plot_ic, plot_stability

try:
    __version__ = version("scice")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "SCICE",
    "SCICEResults",
    "ClusterResult",
    "strategies",
    "legacy",
    "pl",
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
