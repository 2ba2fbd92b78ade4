"""The ``scice`` command: scICE on large ``.h5ad`` files from the shell.

::

    scice light data.h5ad --output data.light.h5ad --n-vars 1
    scice run   data.h5ad --cluster-range 2 20 --n-trials 15 --n-bootstrap 100 --seed 42
    scice plot  data.h5ad --out data_ic.png --threshold 1.005

``run`` clusters a *light* copy of the file (cells, graphs and annotations, but
only the first ``--n-vars`` genes of ``X`` and no layers), then writes only
``uns[<key-added>]`` back into the input file, atomically: the input is either
the old file or the old file plus the results, never anything in between.

Exit status: 0 on success, 1 for a problem with a file or its contents (missing,
not an ``.h5ad`` file, graph key or ``uns`` entry not found, invalid graph),
2 for invalid options, 130 when interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._memory import format_bytes

__all__ = ["main", "build_parser"]

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


# ----------------------------------------------------------------------------
# argument types
# ----------------------------------------------------------------------------
def _int_at_least(minimum: int, allow_minus_one: bool = False):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum and not (allow_minus_one and value == -1):
            extra = " or -1 (all cores)" if allow_minus_one else ""
            raise argparse.ArgumentTypeError(f"must be >= {minimum}{extra}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _number(positive: bool = False, at_least: float | None = None):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            hint = " (put INPUT before the options that take several values)" if text.endswith(".h5ad") else ""
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}{hint}") from None
        if np.isnan(value):
            raise argparse.ArgumentTypeError("must be a number, got nan")
        if positive and not (value > 0 and np.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
        if at_least is not None and value < at_least:
            raise argparse.ArgumentTypeError(f"must be >= {at_least:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def _target(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        hint = " (put INPUT before the options that take several values)" if text.endswith(".h5ad") else ""
        raise argparse.ArgumentTypeError(f"expected an integer cluster count, got {text!r}{hint}") from None


def _objective(text: str) -> str:
    for name in ("CPM", "modularity"):
        if text.lower() == name.lower():
            return name
    raise argparse.ArgumentTypeError(f"choose 'CPM' or 'modularity', got {text!r}")


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


# ----------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------
def _add_input(parser: Any, help_text: str, option_group: Any = None) -> None:
    """INPUT as a positional argument, with ``--input INPUT`` as an alias.

    The legacy scICE wrapper scripts took ``--input FILE``. Both spellings fill
    ``args.input``; :func:`_resolve_input` (called by :func:`main`) rejects giving
    both or neither. The positional is optional for argparse only so that the
    alias can stand in for it.
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


def _resolve_input(args: argparse.Namespace, sub: argparse.ArgumentParser) -> None:
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
    """The ``scice`` argument parser (subcommands ``light``, ``run``, ``plot``).

    Returns
    -------
    argparse.ArgumentParser
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "scICE clustering consistency for single-cell .h5ad files.\n\n"
            "Runs Leiden many times per resolution on the cell graph in obsp and measures the\n"
            "inconsistency coefficient (IC) of each cluster count: IC = 1 when every run gives\n"
            "the same partition, larger when runs disagree. Built for large files: X and the\n"
            "layers are never loaded, and the input is only ever updated atomically."
        ),
        epilog=(
            "typical session:\n"
            "  scice run data.h5ad --cluster-range 2 20 --seed 42    # writes uns['scICE']\n"
            "  scice plot data.h5ad --out data_ic.png                # IC per cluster count\n\n"
            "exit status: 0 success, 1 problem with a file or its contents, 2 invalid options,\n"
            "130 interrupted. Run 'scice COMMAND --help' for the options of each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    # -- light ---------------------------------------------------------------
    p_light = sub.add_parser(
        "light",
        help="write a light copy of an .h5ad file (cells, graphs, annotations; first N genes only)",
        description=(
            "Write a light copy of an .h5ad file for clustering.\n\n"
            "Kept: obs, obsm, obsp, uns, and the first N variables of X with their var rows.\n"
            "Dropped: the other variables, layers, varm, varp and raw. The input is opened\n"
            "read-only and its X is read only for the kept columns (in bounded blocks for a\n"
            "CSR matrix), so this works on files far larger than memory."
        ),
        formatter_class=_Formatter,
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
        "--n-vars", type=_int_at_least(1), default=1, metavar="N", help="number of leading variables of X to keep"
    )
    p_light.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p_light.set_defaults(func=_cmd_light)

    # -- run -----------------------------------------------------------------
    p_run = sub.add_parser(
        "run",
        help="run scICE on an .h5ad file and write the results into its uns",
        description=(
            "Run scICE on the cell graph of an .h5ad file and store the results in it.\n\n"
            "Steps: (1) write a light copy of INPUT (see 'scice light'; a temporary file next\n"
            "to INPUT unless --light-output is given), (2) run scICE on its graph\n"
            "obsp[GRAPH_KEY], (3) write only uns[KEY_ADDED] back into INPUT. Step 3 copies\n"
            "INPUT to a temporary file in the same folder, writes the entry into the copy and\n"
            "renames the copy over INPUT: if anything fails or the run is interrupted, INPUT\n"
            "is left byte-identical and no temporary file remains. Everything else in INPUT\n"
            "(X, layers, obs, var, obsm, obsp, other uns entries) is copied unchanged.\n\n"
            "Choose exactly one mode: --cluster-range LO HI (search resolutions for every\n"
            "cluster count LO..HI), --targets K [K ...] (an explicit list of counts), or\n"
            "--resolution G [G ...] (evaluate the given Leiden resolutions)."
        ),
        epilog=(
            "examples:\n"
            "  scice run data.h5ad --cluster-range 2 20 --n-trials 15 --n-bootstrap 100 --seed 42\n"
            "  scice run data.h5ad --targets 4 6 8 --light-output data.light.h5ad --n-workers 4\n"
            "  scice run data.h5ad --resolution 0.0005 0.001 0.002 --key-added scICE_manual\n\n"
            "Free space of at least the size of INPUT is needed in its folder for the atomic\n"
            "update. The summary table goes to stdout, progress messages to stderr."
        ),
        formatter_class=_Formatter,
    )
    mode = p_run.add_argument_group("mode (exactly one)").add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--cluster-range",
        nargs=2,
        type=_target,
        metavar=("LO", "HI"),
        help="find resolutions for every cluster count from LO to HI (inclusive, LO >= 2)",
    )
    mode.add_argument(
        "--targets",
        nargs="+",
        type=_target,
        metavar="K",
        help="find resolutions for exactly these cluster counts (each >= 2)",
    )
    mode.add_argument(
        "--resolution",
        nargs="+",
        type=_number(positive=True),
        metavar="G",
        help="evaluate these Leiden resolutions (gamma) instead of searching; "
        "useful CPM values on a kNN connectivities graph are about 1e-5 .. 1e-2",
    )
    io = p_run.add_argument_group("files")
    _add_input(p_run, "the .h5ad file to analyse; uns[KEY_ADDED] is written into it", io)
    io.add_argument(
        "--light-output",
        metavar="LIGHT",
        default=None,
        help="keep the light copy at this path (default: a temporary file, removed at the end)",
    )
    io.add_argument(
        "--n-vars",
        type=_int_at_least(1),
        default=1,
        metavar="N",
        help="number of leading variables of X kept in the light copy",
    )
    io.add_argument("--key-added", default="scICE", metavar="KEY", help="results are written to uns[KEY]")
    io.add_argument(
        "--graph-key",
        default="connectivities",
        metavar="GRAPH_KEY",
        help="the cell graph: a square, symmetric, non-negative matrix in obsp",
    )
    method = p_run.add_argument_group("method")
    method.add_argument(
        "--n-trials", type=_int_at_least(1), default=15, metavar="T", help="Leiden runs (seeds) per resolution"
    )
    method.add_argument(
        "--n-bootstrap",
        type=_int_at_least(1),
        default=100,
        metavar="B",
        help="bootstrap resamples of the runs behind each IC",
    )
    method.add_argument("--seed", type=int, default=0, help="random seed: same seed, same results")
    method.add_argument(
        "--objective", type=_objective, default="CPM", metavar="{CPM,modularity}", help="Leiden quality function"
    )
    method.add_argument(
        "--min-cluster-size",
        type=_int_at_least(1),
        default=2,
        metavar="M",
        help="clusters smaller than M do not count and are merged into a neighbour",
    )
    method.add_argument(
        "--ic-threshold",
        type=_number(at_least=1.0),
        default=1.005,
        metavar="IC",
        help="cluster counts with IC below this are reported as consistent "
        "(stored as consistent_clusters; the Python API default is inf)",
    )
    advanced = p_run.add_argument_group("advanced")
    advanced.add_argument(
        "--n-iterations", type=_int_at_least(1), default=10, metavar="I", help="Leiden iterations per run"
    )
    advanced.add_argument(
        "--max-iterations",
        type=_int_at_least(0),
        default=150,
        metavar="R",
        help="maximum refinement rounds per cluster count",
    )
    advanced.add_argument(
        "--beta", type=_number(positive=True), default=0.1, help="Leiden randomness in the refinement step"
    )
    advanced.add_argument(
        "--remove-threshold",
        type=_number(at_least=1.0),
        default=1.15,
        metavar="IC",
        help="drop a cluster count early when all its search probes have IC >= this",
    )
    run_env = p_run.add_argument_group("execution")
    run_env.add_argument(
        "--n-workers",
        type=_int_at_least(1, allow_minus_one=True),
        default=1,
        metavar="W",
        help="worker processes (-1: all cores); results do not depend on it",
    )
    run_env.add_argument(
        "-q", "--quiet", action="store_true", help="no progress messages (the summary table is still printed)"
    )
    p_run.set_defaults(func=_cmd_run)

    # -- plot ----------------------------------------------------------------
    p_plot = sub.add_parser(
        "plot",
        help="plot the IC of each cluster count from the results stored in an .h5ad file",
        description=(
            "Plot the IC distribution of each cluster count stored by 'scice run'.\n\n"
            "Reads only uns[KEY] of INPUT (nothing else is loaded) and saves the figure; the\n"
            "format follows the extension of FILE (png, pdf, svg, ...)."
        ),
        formatter_class=_Formatter,
    )
    p_plot.add_argument("input", metavar="INPUT", help="an .h5ad file with scICE results in uns[KEY]")
    p_plot.add_argument("-o", "--out", required=True, metavar="FILE", help="image file to write (e.g. ic.png)")
    p_plot.add_argument(
        "--threshold",
        type=_number(at_least=1.0),
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
    p_plot.add_argument("--dpi", type=_int_at_least(10), default=150, help="resolution of raster images")
    p_plot.set_defaults(func=_cmd_plot)
    parser.set_defaults(_subparsers={"light": p_light, "run": p_run, "plot": p_plot})
    return parser


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
class _Reporter:
    """Progress messages to stderr (silenced by ``--quiet``)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
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


def _check_output_is_a_file(option: str, text: str, example_name: str, what: str = "a file to write") -> None:
    """Usage error (exit 2) when an output option names a folder instead of a file."""
    if Path(text).is_dir() or text.endswith(("/", os.sep)):
        example = os.path.join(text, example_name)
        raise CLIError(
            f"{option} {text!r} is a folder; give the path of {what}, e.g. {option} {example!r}.", EXIT_USAGE
        )


def _keys(keys: Sequence[str]) -> str:
    """``'a', 'b'`` or ``none``, for messages."""
    return ", ".join(repr(k) for k in keys) if keys else "none"


def _summary_table(results: Any, threshold: float) -> str:
    """The per-count summary printed at the end of ``scice run``."""
    lines = [f"{'n_cluster':>9}  {'gamma':>10}  {'IC':>7}  {'IC 5-95%':>15}  consistent"]
    for row in results.to_frame().itertuples():
        band = f"{row.ic_q05:.4f}-{row.ic_q95:.4f}"
        lines.append(
            f"{row.Index:>9d}  {row.gamma:>10.4g}  {row.ic:>7.4f}  {band:>15}  {'yes' if row.ic < threshold else 'no'}"
        )
    if len(lines) == 1:
        lines.append("(no cluster count could be evaluated)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------
def _cmd_light(args: argparse.Namespace) -> int:
    """``scice light``: write the light copy and say what it holds."""
    from ._h5io import inspect_h5ad, make_light

    say = _Reporter(args.quiet)
    _check_output_is_a_file("--output", args.output, f"{Path(args.input).stem}.light.h5ad")
    info = inspect_h5ad(args.input)
    t0 = time.perf_counter()
    light = make_light(args.input, args.output, args.n_vars)
    dropped = f"; dropped {', '.join(light.dropped)}" if light.dropped else ""
    say(
        f"wrote {args.output}: {light.n_obs} cells, {light.n_vars_kept} of {light.n_vars_total} variables, "
        f"obsp {_keys(info.obsp_keys)}{dropped} ({format_bytes(os.path.getsize(args.output))}, "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    return EXIT_OK


def _mode_params(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """SCICE mode parameters from --cluster-range / --targets / --resolution, and a description."""
    if args.cluster_range is not None:
        lo, hi = args.cluster_range
        return {"cluster_range": (lo, hi)}, f"cluster counts {lo}..{hi}"
    if args.targets is not None:
        return {"cluster_range": list(args.targets)}, f"cluster counts {', '.join(map(str, args.targets))}"
    return {"resolution": list(args.resolution)}, f"resolutions {', '.join(f'{g:g}' for g in args.resolution)}"


def _cmd_run(args: argparse.Namespace) -> int:
    """``scice run``: check everything, light copy, fit, atomic write-back of uns[key], summary."""
    from . import _validation as V
    from ._estimator import SCICE
    from ._graph import graph_from_input
    from ._h5io import (
        check_writable,
        inspect_h5ad,
        make_light,
        remove_if_exists,
        temp_path_next_to,
        write_uns_entry,
    )

    say = _Reporter(args.quiet)
    t_start = time.perf_counter()
    input_path = Path(args.input)
    # A symlinked INPUT is updated through the link: the real file is replaced and its
    # folder holds the temporary files (see _h5io.atomic_output); the link is kept.
    real_input = Path(os.path.realpath(input_path))

    # -- everything that can be checked before hours of compute ----------------
    if args.light_output is not None:
        _check_output_is_a_file("--light-output", args.light_output, f"{input_path.stem}.light.h5ad")
    info = inspect_h5ad(input_path)
    mode_params, mode_text = _mode_params(args)
    est = SCICE(
        **mode_params,
        graph_key=args.graph_key,
        objective_function=args.objective,
        n_trials=args.n_trials,
        n_bootstrap=args.n_bootstrap,
        n_iterations=args.n_iterations,
        max_iterations=args.max_iterations,
        beta=args.beta,
        ic_threshold=args.ic_threshold,
        remove_threshold=args.remove_threshold,
        min_cluster_size=args.min_cluster_size,
        n_jobs=args.n_workers,
        random_state=args.seed,
        verbose=not args.quiet,
    )
    _check_targets(args, info.n_obs)
    try:  # the estimator's own checks, as a backstop (argparse already checked each option)
        est._check_params()
        if "cluster_range" in mode_params:
            V.check_cluster_range(mode_params["cluster_range"], info.n_obs)
        else:
            V.check_resolution(mode_params["resolution"])
    except (ValueError, TypeError) as err:
        raise CLIError(str(err), EXIT_USAGE) from None
    if args.graph_key not in info.obsp_keys:
        raise CLIError(
            f"graph key {args.graph_key!r} not found in obsp of {args.input!r} (available obsp keys: "
            f"{_keys(info.obsp_keys)}); pass --graph-key, or compute a neighbour graph first "
            "(scanpy.pp.neighbors)."
        )
    if not args.key_added or "/" in args.key_added:
        raise CLIError(f"--key-added must be a non-empty name without '/', got {args.key_added!r}.", EXIT_USAGE)
    check_writable(input_path)
    size = input_path.stat().st_size
    free = shutil.disk_usage(real_input.parent).free
    if free < size:
        raise CLIError(
            f"not enough free space next to {args.input!r} for the atomic update: it needs a temporary copy "
            f"of {format_bytes(size)} and {format_bytes(free)} are free."
        )
    if args.light_output is not None:
        light_path = Path(args.light_output)
        if light_path.exists() and os.path.samefile(light_path, input_path):
            raise CLIError("--light-output is the input file; choose another path.", EXIT_USAGE)
        if not light_path.parent.is_dir():
            raise CLIError(f"the folder of --light-output {args.light_output!r} does not exist.")
    stat_before = os.stat(input_path)

    temp_light: Path | None = None
    try:
        # -- 1. light copy ---------------------------------------------------------
        if args.light_output is None:
            temp_light = temp_path_next_to(real_input, "light")
            light_path = temp_light
        say(
            f"{args.input}: {info.n_obs} cells x {info.n_vars} variables ({format_bytes(size)}); "
            f"writing the light copy" + ("" if temp_light else f" {args.light_output}")
        )
        make_light(input_path, light_path, args.n_vars)

        # -- 2. fit ---------------------------------------------------------------
        import anndata as ad

        adata = ad.read_h5ad(light_path)
        try:
            with warnings.catch_warnings():  # fit repeats any warning about the graph
                warnings.simplefilter("ignore")
                graph_from_input(adata, args.graph_key)
        except (ValueError, TypeError) as err:
            raise CLIError(f"the graph obsp[{args.graph_key!r}] of {args.input!r} cannot be used: {err}") from None
        say(
            f"running scICE on obsp[{args.graph_key!r}]: {mode_text}; {args.n_trials} trials, "
            f"{args.n_bootstrap} bootstraps, seed {args.seed}, {args.n_workers} worker(s)"
        )
        # verbose=not --quiet: the estimator logs its progress to stderr
        with warnings.catch_warnings(record=True) as caught:
            est.fit(adata)  # the active warning filters still apply; recorded warnings are relayed below
        for w in caught:  # one line each, without the source line of the warning
            kind = "" if issubclass(w.category, UserWarning) else f"{w.category.__name__}: "
            print(f"{PROG}: warning: {kind}{w.message}", file=sys.stderr)
        results = est.results_
        del adata

        # -- 3. write uns[key] back atomically --------------------------------------
        from .legacy import to_legacy_dict

        legacy = to_legacy_dict(results)
        say(f"writing uns[{args.key_added!r}] into {args.input} (atomic update)")
        write_uns_entry(input_path, args.key_added, legacy, expect_stat=stat_before)
    finally:
        remove_if_exists(temp_light)

    # -- summary (stdout) -------------------------------------------------------
    print(_summary_table(results, args.ic_threshold))
    consistent = results.consistent(args.ic_threshold).tolist()
    best = results.best
    if best is not None:
        print(
            f"best: {best.n_cluster} clusters (gamma {best.gamma:.4g}, IC {best.ic:.4f}); "
            f"consistent (IC < {args.ic_threshold:g}): {', '.join(map(str, consistent)) or 'none'}"
        )
    for target, reason in results.uncovered_targets.items():
        print(f"not covered: {target} clusters ({reason})")
    print(f"wrote uns[{args.key_added!r}] to {args.input} in {time.perf_counter() - t_start:.1f} s")
    return EXIT_OK


def _check_targets(args: argparse.Namespace, n_obs: int) -> None:
    """Check --cluster-range / --targets against the number of cells, in command-line words."""
    if args.cluster_range is not None:
        lo, hi = args.cluster_range
        if lo > hi:
            raise CLIError(
                f"--cluster-range {lo} {hi} is reversed: LO must not exceed HI "
                f"(did you mean --cluster-range {hi} {lo}?).",
                EXIT_USAGE,
            )
        if lo < 2:
            raise CLIError(
                f"--cluster-range LO must be >= 2, got {lo}: one cluster is always consistent, "
                "so k = 1 is never a target.",
                EXIT_USAGE,
            )
        if hi > n_obs:
            raise CLIError(f"--cluster-range HI must not exceed the number of cells ({n_obs}), got {hi}.", EXIT_USAGE)
    if args.targets is not None:
        bad = [k for k in args.targets if k < 2 or k > n_obs]
        if bad:
            raise CLIError(
                f"--targets must lie in [2, {n_obs}] (2 .. number of cells), got {', '.join(map(str, bad))}.",
                EXIT_USAGE,
            )


def _cmd_plot(args: argparse.Namespace) -> int:
    """``scice plot``: read uns[key] only, draw with :func:`scice.pl.plot_ic`, save."""
    from ._h5io import read_uns_entry

    out = Path(args.out)
    if not out.parent.is_dir():
        raise CLIError(f"the folder of --out {args.out!r} does not exist.")
    _check_output_is_a_file("--out", args.out, "ic.png", "an image file")
    from matplotlib.figure import Figure

    supported = Figure().canvas.get_supported_filetypes()
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in supported:
        raise CLIError(
            f"cannot tell the image format of {args.out!r}: use one of the extensions "
            f"{', '.join('.' + k for k in sorted(supported))}.",
            EXIT_USAGE,
        )
    data = read_uns_entry(args.input, args.key)
    if not isinstance(data, dict) or not {"n_cluster", "ic"} <= set(data):
        raise CLIError(
            f"uns[{args.key!r}] of {args.input!r} is not a scICE result (no 'n_cluster'/'ic' "
            "entries); pass --key naming the entry written by 'scice run'."
        )
    results = _decode_results(data, args)
    if results.n_cluster.size == 0:
        raise CLIError(
            f"uns[{args.key!r}] of {args.input!r} holds no cluster count to plot "
            "(the run evaluated none; see its uncovered_targets)."
        )

    import matplotlib.pyplot as plt

    from .pl import plot_ic

    fig, _ = plot_ic(results, threshold=args.threshold, show_gamma=args.show_gamma)
    try:
        fig.savefig(out, dpi=args.dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    print(f"wrote {args.out}")
    return EXIT_OK


def _decode_results(data: dict, args: argparse.Namespace) -> Any:
    """Decode uns[KEY] with :func:`scice.legacy.from_legacy_dict`, with command-line advice on failure.

    A dictionary scice did not write (e.g. the legacy scICEpy tool's, which has no
    ``format_version``), an incomplete or damaged one, or one from a newer scice
    is a problem with the file's contents (exit 1), not a crash.
    """
    from .legacy import FORMAT_VERSION, NewerFormatError, NotSciceResultsError, from_legacy_dict

    where = f"uns[{args.key!r}] of {args.input!r}"
    key_added = "" if args.key == "scICE" else f" --key-added {shlex.quote(args.key)}"
    rerun = f"rerun `scice run {shlex.quote(args.input)} --cluster-range LO HI{key_added}` to recompute the results"
    try:
        return from_legacy_dict(data)
    except NotSciceResultsError:
        raise CLIError(
            f"{where} was not written by scice (it has no 'format_version' entry; results of the "
            f"legacy scICEpy tool cannot be read), so it cannot be plotted; {rerun}."
        ) from None
    except NewerFormatError as err:
        raise CLIError(
            f"{where} was written by a newer scice (result format version {err.version}; this scice "
            f"reads up to version {FORMAT_VERSION}); upgrade scice (pip install -U scice), "
            f"or {rerun}."
        ) from None
    except (ValueError, TypeError, KeyError, IndexError) as err:
        detail = f"missing entry {err.args[0]!r}" if isinstance(err, KeyError) and err.args else str(err).rstrip(".")
        raise CLIError(f"{where} is not a valid scICE result ({detail}); {rerun}.") from None


# ----------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------
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
    from ._h5io import InputFileError

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        hint = ""
        if getattr(args, "cluster_range", None) is not None and all(_is_int(x) for x in extra):
            hint = (
                "; --cluster-range takes two numbers LO HI (inclusive range), "
                "use --targets K [K ...] for an explicit list of cluster counts"
            )
        sub = args._subparsers.get(getattr(args, "command", None), parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    _resolve_input(args, args._subparsers.get(args.command, parser))
    try:
        with _sigterm_as_interrupt():
            return int(args.func(args))
    except (CLIError, InputFileError) as err:
        code = err.code if isinstance(err, CLIError) else EXIT_DATA
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the input file was left unchanged.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _is_int(text: str) -> bool:
    """Whether ``text`` parses as an integer."""
    try:
        int(text)
    except ValueError:
        return False
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
