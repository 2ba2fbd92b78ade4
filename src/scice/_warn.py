"""Warnings attributed to the user's code, however deep in scice they are raised."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

__all__ = ["warn_from_caller"]

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep


def warn_from_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first frame outside the scice package.

    Strategies run several calls below :meth:`SCICE.fit`; a fixed ``stacklevel``
    would name a line of scice, and Python's default filter would then show the
    warning once per session instead of once per calling line.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
