"""The ``scice`` command: scICE on large ``.h5ad`` files from the shell.

::

    scice light data.h5ad --output data.light.h5ad --n-vars 1
    scice run   data.h5ad --cluster-range 2 20 --n-trials 15 --n-bootstrap 100 --seed 42
    scice plot  data.h5ad --out data_ic.png --threshold 1.005
    scice apply data.scice-results.h5ad data.h5ad

``run`` clusters a *light* copy of the file (cells, graphs and annotations, but
only the first ``--n-vars`` genes of ``X`` and no layers), then writes only
``uns[<key-added>]`` back into the input file, atomically: the input is either
the old file or the old file plus the results, never anything in between. If
that write fails, the results are saved to a side file that ``apply`` writes
into the input later (see :mod:`._deliver`).

Exit status: 0 on success, 1 for a problem with a file or its contents (missing,
not an ``.h5ad`` file, graph key or ``uns`` entry not found, invalid graph),
2 for invalid options, 130 when interrupted (Ctrl-C or SIGTERM).

The package: ``_parser`` builds the argument parser, ``_options`` holds the
argument types and the ``run`` options that set an estimator parameter (help
and defaults from :mod:`scice._params` and :class:`~scice.SCICE`), ``_run`` and
``_commands`` run the subcommands, ``_deliver`` writes the results of a run
(and the side file when that fails), ``_common`` holds what they share.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._common import EXIT_DATA, EXIT_INTERRUPTED, PROG, CLIError, sigterm_as_interrupt
from ._parser import build_parser, resolve_input

__all__ = ["main", "build_parser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scice`` command.

    Parameters
    ----------
    argv
        Arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 success, 1 file or data problem, 2 invalid options,
        130 interrupted. ``--help``, ``--version`` and option-parsing errors exit
        through :class:`SystemExit` (status 0, 0 and 2), as argparse does.
    """
    from .._h5io import InputFileError

    parser = build_parser()
    args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    sub = args._subparsers.get(getattr(args, "command", None), parser)
    if extra:
        hint = ""
        if getattr(args, "cluster_range", None) is not None and all(_is_int(x) for x in extra):
            hint = (
                "; --cluster-range takes two numbers LO HI (inclusive range), "
                "use --targets K [K ...] for an explicit list of cluster counts"
            )
        sub.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    resolve_input(args, sub)
    try:
        with sigterm_as_interrupt():
            return int(args.func(args))
    except (CLIError, InputFileError) as err:
        code = err.code if isinstance(err, CLIError) else EXIT_DATA
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        resume = ""
        if getattr(args, "checkpoint", None) is not None:
            resume = f" Finished work is in --checkpoint {args.checkpoint!r}: rerun the same command to resume."
        print(f"{PROG}: interrupted; the input file was left unchanged.{resume}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _is_int(text: str) -> bool:
    """Whether ``text`` parses as an integer."""
    try:
        int(text)
    except ValueError:
        return False
    return True
