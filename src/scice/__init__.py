"""scice: which clusterings of a single-cell graph can you trust?

The inconsistency coefficient (IC) of repeated Leiden clustering, after scICE.
"""

from importlib.metadata import PackageNotFoundError, version

from . import strategies
from ._estimator import SCICE
from ._results import ClusterResult, SCICEResults

try:
    __version__ = version("scice")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["SCICE", "SCICEResults", "ClusterResult", "strategies", "__version__"]
