"""Swappable strategies: searchers, optimizers, IC scorers and parallel layouts.

Each family is a small abstract base class with one abstract method. Pass an
instance (or the name of a built-in) to :class:`scice.SCICE`; write your own by
subclassing the base and check it with :mod:`scice.testing`.
"""

from ._base import (
    ICScorer,
    LayoutInfo,
    OptimizeOutcome,
    Optimizer,
    ParallelLayout,
    Searcher,
    SearchOutcome,
    Task,
)
from ._optimize import ConvergeOptimizer, GridOptimizer, RefineOptimizer, resolution_grid
from ._parallel import ProcessLayout, SerialLayout
from ._score import ECSScorer
from ._search import BisectionSearcher, FixedResolutions

#: Built-in strategies selectable by name.
SEARCHERS = {"bisection": BisectionSearcher, "fixed": FixedResolutions}
OPTIMIZERS = {"refine": RefineOptimizer, "grid": GridOptimizer, "converge": ConvergeOptimizer}
SCORERS = {"ecs": ECSScorer}
LAYOUTS = {"serial": SerialLayout, "processes": ProcessLayout}

__all__ = [
    "Searcher",
    "Optimizer",
    "ICScorer",
    "ParallelLayout",
    "Task",
    "SearchOutcome",
    "OptimizeOutcome",
    "LayoutInfo",
    "BisectionSearcher",
    "FixedResolutions",
    "RefineOptimizer",
    "GridOptimizer",
    "ConvergeOptimizer",
    "resolution_grid",
    "ECSScorer",
    "SerialLayout",
    "ProcessLayout",
    "SEARCHERS",
    "OPTIMIZERS",
    "SCORERS",
    "LAYOUTS",
]
