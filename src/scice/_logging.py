"""Progress messages of a fit: the ``"scice"`` logger, shown on stderr when asked for."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

__all__ = ["logger", "progress_logging"]

logger = logging.getLogger("scice")


@contextlib.contextmanager
def progress_logging(enabled: bool) -> Iterator[None]:
    """While a fit runs with ``verbose=True``, make its INFO messages visible.

    The ``"scice"`` logger is lowered to INFO if it would drop them, and when no
    handler is configured anywhere (a plain script or notebook: Python's
    fallback shows only warnings) a stderr handler is attached for the duration.
    Handlers the application configured are used as they are.
    """
    if not enabled:
        yield
        return
    old_level = logger.level
    handler = None
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(old_level)
