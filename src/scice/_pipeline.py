"""Old home of the task pipeline, now :mod:`scice._fit`; kept so that checkpoints written before the move load.

A checkpoint pickles each finished task as a ``scice._pipeline.TaskResult``
(the class path at the time it was written); unpickling needs this name.
"""

from __future__ import annotations

from ._fit import RunSpec, TaskResult, describe_task, evaluate_task, finalize
from .exceptions import TaskFailedError

__all__ = ["RunSpec", "TaskResult", "TaskFailedError", "describe_task", "evaluate_task", "finalize"]
