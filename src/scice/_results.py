"""Frozen, picklable result records: one :class:`ClusterResult` per final cluster count."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ClusterResult", "SCICEResults", "deep_equal"]


def deep_equal(a: Any, b: Any) -> bool:
    """Structural equality for arrays, DataFrames, dicts, sequences and scalars.

    Arrays compare by dtype kind, shape and values (NaN equal to NaN); floats
    compare exactly (NaN equal to NaN).
    """
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        if not (isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame)):
            return False
        if list(a.columns) != list(b.columns) or a.shape != b.shape:
            return False
        return all(deep_equal(a[c].to_numpy(), b[c].to_numpy()) for c in a.columns)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" and b.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        if a.dtype.kind == "O" or b.dtype.kind == "O":
            return all(deep_equal(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=False))
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if a is pd.NA or b is pd.NA or a is pd.NaT or b is pd.NaT:
        return a is b
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(deep_equal(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _freeze(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """The evaluated trial set behind one final cluster count.

    Attributes
    ----------
    n_cluster
        Number of clusters in :attr:`best_labels` after the small-cluster merge.
    gamma
        Leiden resolution of the trial set.
    ic
        Median of :attr:`ic_vec` (the bootstrap ICs); 1 means every trial agreed.
    ic_vec
        IC of each bootstrap resample of the trials.
    best_labels
        Representative labeling (argmax of S p), small clusters merged, labels
        0..n_cluster-1 by decreasing size.
    labelings
        ``(U, n_cells)`` unique partitions among the trials (canonical labels).
    frequencies
        ``(U,)`` number of trials that gave each unique partition.
    mei
        Per-cell consistency in [0, 1]: the p_a p_b-weighted mean element-centric
        similarity over pairs of distinct unique partitions.
    n_iter
        Leiden iterations behind the final labelings (initial + refinement);
        ``-1`` when they ran to convergence (``optimizer="converge"``).
    source_target_cluster
        The requested target that produced this result (cluster-range mode), or
        ``-1`` in manual resolution mode.
    trial_ic
        IC of the full trial set (before bootstrapping).
    """

    n_cluster: int
    gamma: float
    ic: float
    ic_vec: np.ndarray
    best_labels: np.ndarray
    labelings: np.ndarray
    frequencies: np.ndarray
    mei: np.ndarray
    n_iter: int
    source_target_cluster: int
    trial_ic: float

    def __post_init__(self):
        for name in ("ic_vec", "best_labels", "labelings", "frequencies", "mei"):
            object.__setattr__(self, name, _freeze(getattr(self, name)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClusterResult):
            return NotImplemented
        return deep_equal(self, other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class SCICEResults:
    """Everything a fit produced, one :class:`ClusterResult` per final cluster count.

    Attributes
    ----------
    clusters
        Results sorted by :attr:`ClusterResult.n_cluster`.
    analysis_mode
        ``"cluster_range"`` or ``"resolution"``.
    ic_threshold
        Threshold used for :attr:`consistent_clusters`.
    requested_cluster_range
        Target counts (cluster-range mode) or ``None``.
    resolution_input
        Deduplicated resolutions (manual mode) or ``None``.
    uncovered_targets
        ``{target: reason}`` for every requested target without a result of that count.
    search_coverage_complete
        Whether every target was bracketed by the search and kept by the pre-filter
        (always ``True`` in manual mode).
    target_diagnostics, resolution_search_diagnostics, optimization_diagnostics, resolution_diagnostics
        Tables describing each stage (empty when a stage did not run).
    parallel_layout
        Resolved worker layout: ``n_workers``, ``outer_workers``, ``inner_workers``,
        ``backend``, ``layout``.
    params
        The method parameters of the run (``beta``, ``min_cluster_size``, ...).
    cell_names
        Observation names, when the input was an AnnData object.
    timings
        ``total_seconds``, ``leiden_seconds``, ``scoring_seconds``, ``n_leiden_calls``, ...
    """

    clusters: tuple[ClusterResult, ...]
    analysis_mode: str
    ic_threshold: float = 1.005
    requested_cluster_range: np.ndarray | None = None
    resolution_input: np.ndarray | None = None
    uncovered_targets: dict[int, str] = field(default_factory=dict)
    search_coverage_complete: bool = True
    target_diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    resolution_search_diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    optimization_diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    resolution_diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    parallel_layout: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    cell_names: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "clusters", tuple(sorted(self.clusters, key=lambda c: c.n_cluster)))

    #: Run metadata that says how, not what, was computed; ignored by ``==``.
    _RUN_METADATA = ("timings", "parallel_layout")

    def __eq__(self, other: object) -> bool:
        """Same results: every field except the run metadata (``timings``, ``parallel_layout``).

        Two fits with the same ``random_state`` compare equal whatever ``n_jobs``
        or backend ran them.
        """
        if not isinstance(other, SCICEResults):
            return NotImplemented
        return all(
            deep_equal(getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if f.name not in self._RUN_METADATA
        )

    __hash__ = None  # type: ignore[assignment]

    # -- per-result arrays --------------------------------------------------
    @property
    def n_cluster(self) -> np.ndarray:
        """Final cluster counts, ascending."""
        return np.array([c.n_cluster for c in self.clusters], dtype=np.int64)

    @property
    def ic(self) -> np.ndarray:
        """Median bootstrap IC per final cluster count."""
        return np.array([c.ic for c in self.clusters], dtype=np.float64)

    @property
    def gamma(self) -> np.ndarray:
        """Resolution per final cluster count."""
        return np.array([c.gamma for c in self.clusters], dtype=np.float64)

    # -- summary ------------------------------------------------------------
    def consistent(self, threshold: float | None = None) -> np.ndarray:
        """Cluster counts whose IC is below ``threshold`` (default :attr:`ic_threshold`)."""
        threshold = self.ic_threshold if threshold is None else float(threshold)
        return self.n_cluster[self.ic < threshold]

    @property
    def consistent_clusters(self) -> np.ndarray:
        """Cluster counts with IC below :attr:`ic_threshold`."""
        return self.consistent()

    @property
    def best(self) -> ClusterResult | None:
        """The finest consistent result, or ``None``.

        The result with the largest count whose IC is below :attr:`ic_threshold`:
        the most detailed clustering that is reproducible. When no count is
        consistent, the one with the lowest IC (ties: the smaller count). A single
        cluster (``n_cluster == 1``) is trivially reproducible and tells nothing,
        so it is the best only when it is the only result.
        """
        if not self.clusters:
            return None
        candidates = [c for c in self.clusters if c.n_cluster > 1] or list(self.clusters)
        consistent = [c for c in candidates if c.ic < self.ic_threshold]
        if consistent:
            return max(consistent, key=lambda c: c.n_cluster)
        return min(candidates, key=lambda c: (c.ic, c.n_cluster))

    @property
    def best_cluster(self) -> int | None:
        """The finest consistent cluster count (see :attr:`best`)."""
        best = self.best
        return None if best is None else best.n_cluster

    @property
    def best_resolution(self) -> float | None:
        """Resolution of :attr:`best_cluster`."""
        best = self.best
        return None if best is None else best.gamma

    @property
    def coverage_complete(self) -> bool:
        """Whether every requested target is among the final counts (cluster-range mode)."""
        if self.requested_cluster_range is None:
            return True
        return bool(np.isin(self.requested_cluster_range, self.n_cluster).all())

    def __getitem__(self, n_cluster: int) -> ClusterResult:
        for c in self.clusters:
            if c.n_cluster == n_cluster:
                return c
        raise KeyError(f"No result with {n_cluster} clusters; available counts: {self.n_cluster.tolist()}.")

    def __len__(self) -> int:
        return len(self.clusters)

    def __iter__(self):
        return iter(self.clusters)

    def to_frame(self) -> pd.DataFrame:
        """One row per final cluster count.

        Columns: ``gamma``, ``ic``, ``ic_q05``, ``ic_q95`` (bootstrap quantiles),
        ``trial_ic``, ``n_partitions`` (distinct partitions among the trials),
        ``n_iter``, ``source_target_cluster``, ``consistent``.
        """
        rows = []
        for c in self.clusters:
            rows.append(
                {
                    "n_cluster": c.n_cluster,
                    "gamma": c.gamma,
                    "ic": c.ic,
                    "ic_q05": float(np.quantile(c.ic_vec, 0.05)) if c.ic_vec.size else np.nan,
                    "ic_q95": float(np.quantile(c.ic_vec, 0.95)) if c.ic_vec.size else np.nan,
                    "trial_ic": c.trial_ic,
                    "n_partitions": int(c.labelings.shape[0]),
                    "n_iter": c.n_iter,
                    "source_target_cluster": c.source_target_cluster,
                    "consistent": bool(c.ic < self.ic_threshold),
                }
            )
        columns = [
            "n_cluster",
            "gamma",
            "ic",
            "ic_q05",
            "ic_q95",
            "trial_ic",
            "n_partitions",
            "n_iter",
            "source_target_cluster",
            "consistent",
        ]
        return pd.DataFrame(rows, columns=columns).set_index("n_cluster")

    def __repr__(self) -> str:
        counts = self.n_cluster.tolist()
        return (
            f"SCICEResults(mode={self.analysis_mode!r}, n_cluster={counts}, "
            f"best_cluster={self.best_cluster}, uncovered={sorted(self.uncovered_targets)})"
        )
