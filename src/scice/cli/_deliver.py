"""Where the results of a finished ``scice run`` go, and the side file when that fails.

A finished run is never lost: if writing the results where they were asked for
(INPUT, or ``--output``) fails for any reason (a full disk, INPUT changed during
the run, permissions, Ctrl-C during the write), they are saved to a *side file*,
a small ``.h5ad`` file holding ``uns[KEY]`` and the cell names, and the one-line
error names it and the ``scice apply`` command that writes it into INPUT later.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import Any

from ..exceptions import InputFileError
from ._common import EXIT_INTERRUPTED, PROG, CLIError, Reporter

__all__ = ["SIDE_SUFFIX", "deliver", "side_file_folders"]

#: Name of the side file: ``<input stem>`` + this (``data.scice-results.h5ad``).
SIDE_SUFFIX = ".scice-results.h5ad"


def deliver(
    args: argparse.Namespace, input_path: Path, results: Any, stat_before: os.stat_result, say: Reporter
) -> str:
    """Write the results to ``--output`` or into INPUT, then into ``--light-output``; return where they went.

    Raises
    ------
    CLIError
        The write failed (the results are in a side file, named in the message),
        or ``--light-output`` could not be updated (the results are where they
        were asked for).
    """
    from .._h5io import write_results_file, write_uns_entry
    from ..legacy import to_legacy_dict

    legacy = to_legacy_dict(results)
    key = args.key_added
    try:
        if args.output is not None:
            say(f"writing uns[{key!r}] and the cell names to {args.output}")
            write_results_file(args.output, key, legacy, _cell_names(results, input_path))
            where = args.output
        else:
            say(f"writing uns[{key!r}] into {args.input} (atomic update)")
            write_uns_entry(input_path, key, legacy, expect_stat=stat_before)
            where = args.input
    except KeyboardInterrupt:
        side = _save_side_file(args, input_path, key, legacy, results)
        raise CLIError(
            "interrupted while writing the results; the input file was left unchanged" + _saved_text(args, side),
            EXIT_INTERRUPTED,
        ) from None
    except Exception as err:  # a finished run must not be lost, whatever failed
        side = _save_side_file(args, input_path, key, legacy, results)
        target = args.output if args.output is not None else args.input
        text = (
            _reason(err)
            if isinstance(err, InputFileError)
            else f"writing the results to {target!r} failed: {_reason(err)}"
        )
        raise CLIError(text + _saved_text(args, side)) from None
    if args.light_output is not None:
        try:
            write_uns_entry(args.light_output, key, legacy)
        except Exception as err:
            raise CLIError(
                f"the results were written to {where!r}, but the light copy {args.light_output!r} could not be "
                f"updated with them: {_reason(err)}"
            ) from None
    return where


def _reason(err: BaseException) -> str:
    """The error in one line, without its final period (it is followed by more text)."""
    text = " ".join(str(err).split()).rstrip(".")
    if isinstance(err, (InputFileError, OSError)):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _cell_names(results: Any, input_path: Path) -> Any:
    """The cell names of the run: those recorded in the results, else INPUT's."""
    if results.cell_names is not None:
        return results.cell_names
    from .._h5io import read_obs_names

    return read_obs_names(input_path)


def _saved_text(args: argparse.Namespace, side: Path | str | None) -> str:
    """``; the results were saved to X; apply them with: scice apply X INPUT``, or why they were not."""
    if isinstance(side, Path):
        apply = f"{PROG} apply {shlex.quote(str(side))} {shlex.quote(args.input)}"
        if args.key_added != "scICE":
            apply += f" --key-added {shlex.quote(args.key_added)}"
        return f"; the results were saved to {str(side)!r}; apply them with: {apply}"
    rerun = (
        f"; rerun with the same --checkpoint {shlex.quote(args.checkpoint)} to reuse the finished work"
        if args.checkpoint is not None
        else ""
    )
    return f"; the results could not be saved anywhere either ({side}){rerun}"


def side_file_folders(args: argparse.Namespace, input_path: Path) -> list[Path]:
    """Where a side file is tried, in order: next to INPUT, the ``--checkpoint`` folder, the current folder."""
    folders = [Path(os.path.realpath(input_path)).parent]
    if args.checkpoint is not None:
        folders.append(Path(args.checkpoint))
    folders.append(Path.cwd())
    out: list[Path] = []
    for folder in folders:
        if folder.is_dir() and not any(_same(folder, seen) for seen in out):
            out.append(folder)
    return out


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _free_name(folder: Path, stem: str) -> Path:
    """``<stem>.scice-results.h5ad`` in ``folder``, or ``<stem>.scice-results.<n>.h5ad``: never an existing file."""
    path = folder / f"{stem}{SIDE_SUFFIX}"
    n = 1
    while path.exists():
        path = folder / f"{stem}{SIDE_SUFFIX[: -len('.h5ad')]}.{n}.h5ad"
        n += 1
    return path


def _save_side_file(args: argparse.Namespace, input_path: Path, key: str, legacy: dict, results: Any) -> Path | str:
    """Save the results to the first folder that takes them; the path, or why none did.

    An existing side file (of an earlier run) is never replaced: the new one
    gets a numbered name.
    """
    from .._h5io import write_results_file

    last = "no folder to try"
    try:
        names = _cell_names(results, input_path)
    except Exception as err:  # INPUT unreadable now: save without names rather than lose the run
        names, last = [], _reason(err)
    for folder in side_file_folders(args, input_path):
        path = _free_name(folder, input_path.stem)
        try:
            write_results_file(path, key, legacy, names)
        except (Exception, KeyboardInterrupt) as err:
            last = f"{folder}: {_reason(err)}"
            continue
        return path
    return last
