"""The ``scice`` argument parser: one function per subcommand, one per group of ``run`` options."""

from __future__ import annotations

import argparse
from typing import Any

from ._commands import cmd_apply, cmd_light, cmd_plot
from ._common import PROG
from ._options import METHOD_OPTIONS, add_method_options, int_at_least, number, target
from ._run import cmd_run

_DESCRIPTION = """\
scICE clustering consistency for single-cell .h5ad files.

Runs Leiden many times per resolution on the cell graph in obsp and measures the
inconsistency coefficient (IC) of each cluster count: IC = 1 when every run gives
the same partition, larger when runs disagree. Built for large files: X and the
layers are never loaded, and the input is only ever updated atomically."""

_EPILOG = """\
typical session:
  scice run data.h5ad --cluster-range 2 20 --seed 42    # writes uns['scICE']
  scice plot data.h5ad --out data_ic.png                # IC per cluster count
  scice apply data.scice-results.h5ad data.h5ad         # results saved aside, into data.h5ad

exit status: 0 success, 1 problem with a file or its contents, 2 invalid options,
130 interrupted. Run 'scice COMMAND --help' for the options of each command."""

_LIGHT_DESCRIPTION = """\
Write a light copy of an .h5ad file for clustering.

Kept: obs, obsm, obsp, uns, and the first N variables of X with their var rows.
Dropped: the other variables, layers, varm, varp and raw. The input is opened
read-only and its X is read only for the kept columns (in bounded blocks for a
CSR matrix), so this works on files far larger than memory."""

_RUN_DESCRIPTION = """\
Run scICE on the cell graph of an .h5ad file and store the results in it.

Steps: (1) check every option and file, (2) write a light copy of INPUT (see
'scice light'; a temporary file next to INPUT unless --light-output is given),
(3) run scICE on its graph obsp[GRAPH_KEY], (4) write only uns[KEY_ADDED] back
into INPUT (or, with --output FILE, into a small results file; --light-output
gets the new entry too). Step 4 builds a new copy of INPUT in a temporary file
in the same folder (every object but the old entry, so reruns do not grow the
file), writes the entry into it and renames it over INPUT: if anything fails
or the run is interrupted, INPUT is left byte-identical and no temporary file
of this run remains. Everything else in INPUT (X, layers, obs, var, obsm,
obsp, other uns entries) is copied unchanged.

A finished run is never lost: if step 4 fails (disk full, INPUT changed during
the run, permissions, Ctrl-C), the results are saved to a side file
INPUT_STEM.scice-results.h5ad next to INPUT (else in the --checkpoint folder,
else in the current folder) and the error line names the 'scice apply' command
that writes them into INPUT later. A read-only INPUT or folder (no write bit
in its mode, even for root) is refused before any work unless --output is
given. Temporary files a killed run left next to INPUT are removed if their
process no longer runs on this host, else named in a warning.

Choose exactly one mode: --cluster-range LO HI (search resolutions for every
cluster count LO..HI), --targets K [K ...] (an explicit list of counts), or
--resolution G [G ...] (evaluate the given Leiden resolutions)."""

_RUN_EPILOG = """\
examples:
  scice run data.h5ad --cluster-range 2 20 --n-trials 15 --n-bootstrap 100 --seed 42
  scice run data.h5ad --targets 4 6 8 --light-output data.light.h5ad --n-workers 4
  scice run data.h5ad --resolution 0.0005 0.001 0.002 --key-added scICE_manual

  scice run data.h5ad --cluster-range 2 20 --checkpoint data.ckpt   # rerun resumes
  scice run data.h5ad --cluster-range 2 20 --output data.scice.h5ad # INPUT only read

Free space of at least the size of INPUT is needed in its folder for the atomic
update; every write checks the free space first. The summary table goes to
stdout; progress (one bar counted in Leiden calls, with the log lines printed
through it) goes to stderr."""

_PLOT_DESCRIPTION = """\
Plot the IC distribution of each cluster count stored by 'scice run'.

Reads only uns[KEY] of INPUT (nothing else is loaded; INPUT may be a results
file of 'scice run --output' or a side file) and saves the figure; the format
follows the extension of FILE (png, pdf, svg, ...). The image is drawn in memory
and written whole after a free-space check: a failed write leaves no file."""

_APPLY_DESCRIPTION = """\
Write the scICE results of a results file into an .h5ad file.

RESULTS is a file written by 'scice run --output' or the side file a failed
write-back saved. Its uns[KEY] is written into uns[KEY_ADDED] of INPUT with the
atomic update of 'scice run' (INPUT is byte-identical if anything fails), after
checking that both files hold the same cells in the same order."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Show meaningful defaults and keep the hand-made line breaks of descriptions and epilogs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (
            "%(default)" not in help_text
            and default is not None
            and not isinstance(default, bool)
            and default is not argparse.SUPPRESS
            and (action.option_strings or action.nargs in ("?", "*"))
        ):
            help_text += " (default: %(default)s)"
        return help_text

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        # INPUT is optional for argparse only because --input may stand in for it
        # (see _add_input); show it as required in the usage line.
        if not action.option_strings and action.dest == "input" and action.nargs == "?":
            return action.metavar or default_metavar
        return super()._format_args(action, default_metavar)


def _subcommand(sub: Any, name: str, func: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand's parser (``help``, ``description``, ``epilog`` in ``kwargs``) that runs ``func``."""
    parser = sub.add_parser(name, formatter_class=_Formatter, **kwargs)
    parser.set_defaults(func=func)
    return parser


def _add_input(parser: Any, help_text: str, option_group: Any = None) -> None:
    """INPUT as a positional argument, with ``--input INPUT`` as an alias.

    The legacy scICE wrapper scripts took ``--input FILE``. Both spellings fill
    ``args.input``; :func:`resolve_input` (called by :func:`scice.cli.main`)
    rejects giving both or neither. The positional is optional for argparse only
    so that the alias can stand in for it.
    """
    parser.add_argument(
        "input", metavar="INPUT", nargs="?", default=None, help=f"{help_text} (or give it as --input INPUT)"
    )
    (option_group or parser).add_argument(
        "--input",
        dest="input_option",
        metavar="INPUT",
        default=None,
        help="same as the positional INPUT (the spelling of the legacy scICE wrapper scripts)",
    )


def resolve_input(args: argparse.Namespace, sub: argparse.ArgumentParser) -> None:
    """Merge ``--input`` into ``args.input``; a usage error (exit 2) for both or neither."""
    if not hasattr(args, "input_option"):
        return
    if args.input is not None and args.input_option is not None:
        sub.error(
            f"INPUT given twice ({args.input!r} and --input {args.input_option!r}); "
            "give the .h5ad file either as INPUT or with --input, not both"
        )
    if args.input is None and args.input_option is None:
        sub.error("the following arguments are required: INPUT (the .h5ad file, or --input INPUT)")
    if args.input is None:
        args.input = args.input_option


def build_parser() -> argparse.ArgumentParser:
    """The ``scice`` argument parser (subcommands ``light``, ``run``, ``plot``, ``apply``).

    Returns
    -------
    argparse.ArgumentParser
    """
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    subparsers = {"light": _add_light(sub), "run": _add_run(sub), "plot": _add_plot(sub), "apply": _add_apply(sub)}
    parser.set_defaults(_subparsers=subparsers)
    return parser


def _add_light(sub: Any) -> argparse.ArgumentParser:
    """The ``scice light`` subcommand."""
    p_light = _subcommand(
        sub,
        "light",
        cmd_light,
        help="write a light copy of an .h5ad file (cells, graphs, annotations; first N genes only)",
        description=_LIGHT_DESCRIPTION,
    )
    _add_input(p_light, "the .h5ad file to read; it is never modified")
    p_light.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="LIGHT",
        help="where to write the light .h5ad file (replaced if it exists)",
    )
    p_light.add_argument(
        "--n-vars", type=int_at_least(1), default=1, metavar="N", help="number of leading variables of X to keep"
    )
    p_light.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p_light


def _add_run(sub: Any) -> argparse.ArgumentParser:
    """The ``scice run`` subcommand: mode, files, method, advanced and execution options."""
    p_run = _subcommand(
        sub,
        "run",
        cmd_run,
        help="run scICE on an .h5ad file and write the results into its uns",
        description=_RUN_DESCRIPTION,
        epilog=_RUN_EPILOG,
    )
    _add_mode_options(p_run)
    _add_file_options(p_run)
    add_method_options(p_run.add_argument_group("method"), METHOD_OPTIONS["method"])
    add_method_options(p_run.add_argument_group("advanced"), METHOD_OPTIONS["advanced"])
    run_env = p_run.add_argument_group("execution")
    add_method_options(run_env, METHOD_OPTIONS["execution"])
    run_env.add_argument(
        "--checkpoint",
        metavar="DIR",
        default=None,
        help="save the search, each finished cluster count and the trial sets of the counts still running in "
        "this folder (created if needed); rerunning the same command with the same folder resumes an interrupted "
        "run and gives the same results",
    )
    run_env.add_argument(
        "--dry-run",
        action="store_true",
        help="check the options and the files, print the cost estimate (Leiden calls, wall time, memory; "
        "from a few real Leiden calls on the graph) and stop without writing anything",
    )
    run_env.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar and no progress messages (the summary table and errors are still printed)",
    )
    return p_run


def _add_mode_options(p_run: argparse.ArgumentParser) -> None:
    """``--cluster-range`` | ``--targets`` | ``--resolution``: exactly one."""
    mode = p_run.add_argument_group("mode (exactly one)").add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--cluster-range",
        nargs=2,
        type=target,
        metavar=("LO", "HI"),
        help="find resolutions for every cluster count from LO to HI (inclusive, LO >= 2)",
    )
    mode.add_argument(
        "--targets",
        nargs="+",
        type=target,
        metavar="K",
        help="find resolutions for exactly these cluster counts (each >= 2)",
    )
    mode.add_argument(
        "--resolution",
        nargs="+",
        type=number(positive=True),
        metavar="G",
        help="evaluate these Leiden resolutions (gamma) instead of searching; "
        "useful CPM values on a kNN connectivities graph are about 1e-5 .. 1e-2",
    )


def _add_file_options(p_run: argparse.ArgumentParser) -> None:
    """INPUT, the light copy, the results key and the graph key."""
    io = p_run.add_argument_group("files")
    _add_input(p_run, "the .h5ad file to analyse; uns[KEY_ADDED] is written into it (unless --output)", io)
    io.add_argument(
        "--output",
        metavar="FILE",
        default=None,
        help="write the results to this small .h5ad file (uns[KEY_ADDED] and the cell names) instead of "
        "into INPUT, which is then only read; 'scice plot FILE' reads it, 'scice apply FILE INPUT' copies "
        "the results into INPUT",
    )
    io.add_argument(
        "--light-output",
        metavar="LIGHT",
        default=None,
        help="keep the light copy at this path, with the new results in its uns "
        "(default: a temporary file, removed at the end)",
    )
    io.add_argument(
        "--n-vars",
        type=int_at_least(1),
        default=1,
        metavar="N",
        help="number of leading variables of X kept in the light copy",
    )
    io.add_argument("--key-added", default="scICE", metavar="KEY", help="results are written to uns[KEY]")
    add_method_options(io, METHOD_OPTIONS["files"])


def _add_plot(sub: Any) -> argparse.ArgumentParser:
    """The ``scice plot`` subcommand."""
    p_plot = _subcommand(
        sub,
        "plot",
        cmd_plot,
        help="plot the IC of each cluster count from the results stored in an .h5ad file",
        description=_PLOT_DESCRIPTION,
    )
    p_plot.add_argument("input", metavar="INPUT", help="an .h5ad file with scICE results in uns[KEY]")
    p_plot.add_argument("-o", "--out", required=True, metavar="FILE", help="image file to write (e.g. ic.png)")
    p_plot.add_argument(
        "--threshold",
        type=number(at_least=1.0),
        default=1.005,
        metavar="IC",
        help="IC threshold line; counts below it are drawn as consistent",
    )
    p_plot.add_argument("--key", default="scICE", help="the results are read from uns[KEY]")
    p_plot.add_argument(
        "--no-gamma",
        dest="show_gamma",
        action="store_false",
        help="do not annotate each cluster count with its resolution",
    )
    p_plot.add_argument("--dpi", type=int_at_least(10), default=150, help="resolution of raster images")
    return p_plot


def _add_apply(sub: Any) -> argparse.ArgumentParser:
    """The ``scice apply`` subcommand."""
    p_apply = _subcommand(
        sub,
        "apply",
        cmd_apply,
        help="write the results saved in a results file (scice run --output, or a side file) into an .h5ad file",
        description=_APPLY_DESCRIPTION,
    )
    p_apply.add_argument("results", metavar="RESULTS", help="the results file (an .h5ad file with uns[KEY])")
    p_apply.add_argument("input", metavar="INPUT", help="the .h5ad file to write the results into")
    p_apply.add_argument(
        "--key",
        default=None,
        metavar="KEY",
        help="the entry of RESULTS to apply (default: its only uns entry, else 'scICE')",
    )
    p_apply.add_argument(
        "--key-added", default=None, metavar="KEY_ADDED", help="written to uns[KEY_ADDED] of INPUT (default: KEY)"
    )
    p_apply.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p_apply
