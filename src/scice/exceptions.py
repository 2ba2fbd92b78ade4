"""Exceptions raised by scice, in one place.

They are also importable from the modules that raise them (``scice.legacy``,
``scice._leiden``, ...), so older imports keep working. This module imports
nothing heavy: worker processes load it.
"""

from __future__ import annotations

__all__ = [
    "TaskFailedError",
    "WorkerError",
    "FitCancelled",
    "InputFileError",
    "NotSciceResultsError",
    "NewerFormatError",
]


class TaskFailedError(RuntimeError):
    """A task (one target or one manual resolution) failed; the message names it."""


class WorkerError(RuntimeError):
    """The worker pool failed while running Leiden chunks (a worker died, the cluster went away)."""


class FitCancelled(Exception):
    """Raised in a task thread once the fit has been stopped (Ctrl-C or another task failed)."""


class InputFileError(ValueError):
    """A user-facing problem with an input or output file (missing, not an .h5ad, ...)."""


class NotSciceResultsError(ValueError):
    """The dictionary was not written by scice (no ``format_version``: e.g. the legacy scICEpy tool's)."""


class NewerFormatError(ValueError):
    """The dictionary was written by a newer scice; ``version`` is its format version.

    Parameters
    ----------
    message
        What was found and what to do.
    version
        The format version of the dictionary.
    """

    def __init__(self, message: str, version: int):
        super().__init__(message)
        self.version = version
