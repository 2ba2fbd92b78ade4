"""What every ``scice`` command shares: exit codes, the user error, messages and small checks."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PROG = "scice"
EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CLIError(Exception):
    """A user error: printed as one ``scice: error: ...`` line, no traceback.

    Parameters
    ----------
    message
        What went wrong and what to do.
    code
        Exit status (:data:`EXIT_DATA` or :data:`EXIT_USAGE`).
    """

    def __init__(self, message: str, code: int = EXIT_DATA):
        super().__init__(message)
        self.code = code


class Reporter:
    """Progress messages to stderr (silenced by ``--quiet``).

    Parameters
    ----------
    quiet
        Print nothing.
    """

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (e.g. a batch scheduler's time limit) like Ctrl-C, so cleanup runs."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_output_is_a_file(option: str, text: str, example_name: str, what: str = "a file to write") -> None:
    """Usage error (exit 2) when an output option names a folder instead of a file."""
    if Path(text).is_dir() or text.endswith(("/", os.sep)):
        example = os.path.join(text, example_name)
        raise CLIError(
            f"{option} {text!r} is a folder; give the path of {what}, e.g. {option} {example!r}.", EXIT_USAGE
        )


def keys_text(keys: Sequence[str]) -> str:
    """``'a', 'b'`` or ``none``, for messages."""
    return ", ".join(repr(k) for k in keys) if keys else "none"
