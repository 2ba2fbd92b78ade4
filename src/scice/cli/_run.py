"""``scice run``: check everything, light copy, fit, the results delivered (side file on failure), summary."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._memory import format_bytes
from ..exceptions import InputFileError
from ._common import EXIT_OK, EXIT_USAGE, PROG, CLIError, Reporter, check_output_is_a_file, keys_text
from ._deliver import deliver
from ._options import in_option_words, method_arguments


def cmd_run(args: argparse.Namespace) -> int:
    """``scice run``: everything that can be checked first, then the work, then the summary."""
    say = Reporter(args.quiet)
    t_start = time.perf_counter()
    input_path = Path(args.input)
    info, est, mode_text = _prepare(args, input_path)
    if args.dry_run:
        print(_estimate_cost(args, input_path, est))
        return EXIT_OK
    results, where = _work(args, input_path, info, est, mode_text, say)
    _print_summary(args, results, where, t_start)
    return EXIT_OK


# ----------------------------------------------------------------------------
# before hours of compute
# ----------------------------------------------------------------------------
def _prepare(args: argparse.Namespace, input_path: Path) -> tuple[Any, Any, str]:
    """Check the options and the files; return the file's summary, the estimator and the mode's description.

    Nothing is written here except that temporary files left next to INPUT (or
    the outputs) by a killed run are removed (see :func:`_clean_leftovers`).
    """
    from .._h5io import inspect_h5ad

    for option, value, example in (
        ("--light-output", args.light_output, f"{input_path.stem}.light.h5ad"),
        ("--output", args.output, f"{input_path.stem}.scice.h5ad"),
    ):
        if value is not None:
            check_output_is_a_file(option, value, example)
    info = inspect_h5ad(input_path)
    mode_params, mode_text = _mode_params(args)
    _check_seed(args.seed)
    est = _make_estimator(args, mode_params)
    _check_targets(args, info.n_obs)
    _check_estimator(est, info.n_obs)
    if args.graph_key not in info.obsp_keys:
        raise CLIError(
            f"graph key {args.graph_key!r} not found in obsp of {args.input!r} (available obsp keys: "
            f"{keys_text(info.obsp_keys)}); pass --graph-key, or compute a neighbour graph first "
            "(scanpy.pp.neighbors)."
        )
    if not args.key_added or "/" in args.key_added:
        raise CLIError(f"--key-added must be a non-empty name without '/', got {args.key_added!r}.", EXIT_USAGE)
    _check_output_file("--light-output", args.light_output, input_path)
    _check_output_file("--output", args.output, input_path)
    _check_checkpoint(args)
    _clean_leftovers(args, input_path)
    if args.output is None:
        _check_input_writable(args, input_path)
        _check_free_space(args, input_path)
    return info, est, mode_text


def _check_seed(seed: int) -> None:
    """``--seed`` must seed numpy's RandomState, the rule of ``SCICE(random_state=...)``."""
    from .._validation import MAX_SEED

    if not 0 <= seed <= MAX_SEED:
        raise CLIError(f"--seed must be an integer from 0 to {MAX_SEED} (2**32 - 1), got {seed}.", EXIT_USAGE)


def _check_input_writable(args: argparse.Namespace, input_path: Path) -> None:
    """INPUT (and its folder) must be writable, mode bits included, unless --output is given."""
    from .._atomic import check_writable

    try:
        check_writable(input_path)
    except InputFileError as err:
        raise CLIError(
            f"{str(err).rstrip('.')}; nothing was computed. Make it writable (chmod u+w), or write the results "
            "elsewhere with --output FILE and apply them later with 'scice apply'."
        ) from None


def _check_output_file(option: str, value: str | None, input_path: Path) -> None:
    """An output must not be INPUT, and its folder must exist and be writable (and the file, if it exists)."""
    from .._atomic import check_folder_writable, check_writable

    if value is None:
        return
    path = Path(value)
    if path.exists() and os.path.samefile(path, input_path):
        raise CLIError(f"{option} is the input file; choose another path.", EXIT_USAGE)
    folder = _real(path).parent
    if not folder.is_dir():
        raise CLIError(f"the folder of {option} {value!r} does not exist.")
    try:
        check_folder_writable(folder, f"the folder of {option} {value!r}")
        if path.exists():
            check_writable(path)
    except InputFileError as err:
        raise CLIError(f"{str(err).rstrip('.')}; nothing was computed.") from None


def _check_checkpoint(args: argparse.Namespace) -> None:
    """``--checkpoint DIR``: a folder (or a new one in an existing, writable folder)."""
    from .._atomic import check_folder_writable

    if args.checkpoint is None:
        return
    path = Path(args.checkpoint)
    if path.exists() and not path.is_dir():
        raise CLIError(f"--checkpoint {args.checkpoint!r} is a file; give a folder (it is created if needed).")
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise CLIError(f"the folder of --checkpoint {args.checkpoint!r} does not exist.")
    try:
        check_folder_writable(folder, f"--checkpoint {args.checkpoint!r}")
    except InputFileError as err:
        raise CLIError(f"{str(err).rstrip('.')}; nothing was computed.") from None


def _clean_leftovers(args: argparse.Namespace, input_path: Path) -> None:
    """Remove the temporary files a killed run left next to the files this run writes; name the others.

    Only files of a process of this host that no longer runs are removed; a
    temporary file another run may still be writing is named in a warning and
    kept (see :func:`scice._atomic.clean_leftovers`).
    """
    from .._atomic import clean_leftovers

    for path in dict.fromkeys(_real(Path(p)) for p in (input_path, args.output, args.light_output) if p is not None):
        removed, kept = clean_leftovers(path)
        for leftover in removed:
            print(
                f"{PROG}: warning: removed {str(leftover)!r}, a temporary file left by an interrupted run",
                file=sys.stderr,
            )
        for leftover in kept:
            print(
                f"{PROG}: warning: {str(leftover)!r} is a temporary file of another scice run that may still be "
                "running (or of another host); it was left in place: delete it if no run uses it",
                file=sys.stderr,
            )


def _mode_params(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """SCICE mode parameters from --cluster-range / --targets / --resolution, and a description."""
    if args.cluster_range is not None:
        lo, hi = args.cluster_range
        return {"cluster_range": (lo, hi)}, f"cluster counts {lo}..{hi}"
    if args.targets is not None:
        return {"cluster_range": list(args.targets)}, f"cluster counts {', '.join(map(str, args.targets))}"
    return {"resolution": list(args.resolution)}, f"resolutions {', '.join(f'{g:g}' for g in args.resolution)}"


def _make_estimator(args: argparse.Namespace, mode_params: dict[str, Any]) -> Any:
    """The estimator of the method options (legacy names such as ``--seed`` renamed)."""
    from .._estimator import SCICE
    from .._params import estimator_params

    return SCICE(
        **mode_params,
        **estimator_params(method_arguments(args)),
        checkpoint=args.checkpoint,
        verbose=not args.quiet,
    )


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


def _check_estimator(est: Any, n_cells: int) -> None:
    """The estimator's own checks of its parameters and targets, before any work; a usage error (exit 2).

    argparse has already checked each option and :func:`_check_targets` the
    targets (with CLI-worded messages); :func:`scice._plan.check_params` is the
    same check a fit makes first, without a graph.
    """
    from .._plan import check_params

    try:
        with warnings.catch_warnings():  # the fit repeats its warnings; they are relayed then
            warnings.simplefilter("ignore")
            check_params(est, n_cells)
    except (ValueError, TypeError) as err:
        raise CLIError(str(err), EXIT_USAGE) from None


def _check_free_space(args: argparse.Namespace, input_path: Path) -> None:
    """The atomic update needs room for a copy of INPUT in the folder of the real file."""
    # A symlinked INPUT is updated through the link: the real file is replaced and its
    # folder holds the temporary files (see _h5io.atomic_output); the link is kept.
    size = input_path.stat().st_size
    free = shutil.disk_usage(_real(input_path).parent).free
    if free < size:
        raise CLIError(
            f"not enough free space next to {args.input!r} for the atomic update: it needs a temporary copy "
            f"of {format_bytes(size)} and {format_bytes(free)} are free."
        )


def _real(path: Path) -> Path:
    """The file a (possibly symlinked) path names."""
    return Path(os.path.realpath(path))


def _estimate_cost(args: argparse.Namespace, input_path: Path, est: Any) -> Any:
    """``--dry-run``: the estimator's cost estimate on the graph of INPUT (read alone, nothing written)."""
    from .._h5io import read_graph
    from .._memory import available_memory

    graph = read_graph(input_path, args.graph_key)
    try:
        with relayed_warnings():
            cost = est.estimate_cost(graph)
    except (ValueError, TypeError) as err:
        raise CLIError(f"the graph obsp[{args.graph_key!r}] of {args.input!r} cannot be used: {err}") from None
    have = available_memory()
    if have is not None and cost.memory_bytes > have:
        print(cost)
        raise CLIError(
            f"this run would be refused: it needs about {format_bytes(cost.memory_bytes)} of memory and "
            f"{format_bytes(have)} is available; lower --n-workers (each worker holds a copy of the graph) "
            "or --n-trials."
        )
    return cost


# ----------------------------------------------------------------------------
# the work
# ----------------------------------------------------------------------------
def _work(
    args: argparse.Namespace, input_path: Path, info: Any, est: Any, mode_text: str, say: Reporter
) -> tuple[Any, str]:
    """Light copy, fit, then the results delivered (see :mod:`._deliver`); the temporary light copy is removed.

    Returns the results and where they were written.
    """
    from .._h5io import make_light, remove_if_exists, temp_path_next_to

    stat_before = os.stat(input_path)
    temp_light: Path | None = None
    try:
        if args.light_output is None:
            temp_light = temp_path_next_to(_real(input_path), "light")
        light_path = temp_light or Path(args.light_output)
        say(
            f"{args.input}: {info.n_obs} cells x {info.n_vars} variables ({format_bytes(input_path.stat().st_size)}); "
            f"writing the light copy" + ("" if temp_light else f" {args.light_output}")
        )
        make_light(input_path, light_path, args.n_vars, drop_uns=(args.key_added,))
        results = _fit_light_copy(args, light_path, est, mode_text, say)
    finally:
        remove_if_exists(temp_light)
    return results, deliver(args, input_path, results, stat_before, say)


def _fit_light_copy(args: argparse.Namespace, light_path: Path, est: Any, mode_text: str, say: Reporter) -> Any:
    """Read the light copy, check its graph, fit; warnings are relayed as one line each."""
    import anndata as ad

    from .._graph import graph_from_input

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
    with relayed_warnings():
        try:
            est.fit(adata)
        except MemoryError as err:  # the memory guard refused the run before any Leiden call
            text = in_option_words(str(err)).rstrip(".")
            raise CLIError(f"{text[:1].lower()}{text[1:]}; nothing was written.") from None
    return est.results_


@contextmanager
def relayed_warnings() -> Iterator[None]:
    """Print each warning at once as one ``scice: warning: ...`` line in option words (above a progress bar)."""
    from tqdm import tqdm

    def show(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
        kind = "" if issubclass(category, UserWarning) else f"{category.__name__}: "
        tqdm.write(f"{PROG}: warning: {kind}{in_option_words(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():  # restores showwarning afterwards; the active filters still apply
        warnings.showwarning = show
        yield


# ----------------------------------------------------------------------------
# the summary (stdout)
# ----------------------------------------------------------------------------
def _print_summary(args: argparse.Namespace, results: Any, where: str, t_start: float) -> None:
    """The table, the best and the consistent counts, the uncovered targets, the time taken."""
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
    print(f"wrote uns[{args.key_added!r}] to {where} in {time.perf_counter() - t_start:.1f} s")


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
