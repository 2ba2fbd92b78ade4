"""``scice run``: check everything, light copy, fit, atomic write-back of ``uns[key]``, summary."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from .._memory import format_bytes
from ._common import EXIT_OK, EXIT_USAGE, PROG, CLIError, Reporter, check_output_is_a_file, keys_text
from ._options import method_arguments


def cmd_run(args: argparse.Namespace) -> int:
    """``scice run``: everything that can be checked first, then the work, then the summary."""
    say = Reporter(args.quiet)
    t_start = time.perf_counter()
    input_path = Path(args.input)
    info, est, mode_text = _prepare(args, input_path)
    results = _fit_and_write_back(args, input_path, info, est, mode_text, say)
    _print_summary(args, results, t_start)
    return EXIT_OK


# ----------------------------------------------------------------------------
# before hours of compute
# ----------------------------------------------------------------------------
def _prepare(args: argparse.Namespace, input_path: Path) -> tuple[Any, Any, str]:
    """Check the options and the files; return the file's summary, the estimator and the mode's description."""
    from .._h5io import check_writable, inspect_h5ad

    if args.light_output is not None:
        check_output_is_a_file("--light-output", args.light_output, f"{input_path.stem}.light.h5ad")
    info = inspect_h5ad(input_path)
    mode_params, mode_text = _mode_params(args)
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
    check_writable(input_path)
    _check_free_space(args, input_path)
    _check_light_output(args, input_path)
    return info, est, mode_text


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

    return SCICE(**mode_params, **estimator_params(method_arguments(args)), verbose=not args.quiet)


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


def _check_light_output(args: argparse.Namespace, input_path: Path) -> None:
    """``--light-output`` must not be INPUT and its folder must exist."""
    if args.light_output is None:
        return
    light_path = Path(args.light_output)
    if light_path.exists() and os.path.samefile(light_path, input_path):
        raise CLIError("--light-output is the input file; choose another path.", EXIT_USAGE)
    if not light_path.parent.is_dir():
        raise CLIError(f"the folder of --light-output {args.light_output!r} does not exist.")


def _real(path: Path) -> Path:
    """The file a (possibly symlinked) path names."""
    return Path(os.path.realpath(path))


# ----------------------------------------------------------------------------
# the work
# ----------------------------------------------------------------------------
def _fit_and_write_back(
    args: argparse.Namespace, input_path: Path, info: Any, est: Any, mode_text: str, say: Reporter
) -> Any:
    """Light copy, fit, atomic write-back of ``uns[key]``; the temporary light copy is always removed."""
    from .._h5io import make_light, remove_if_exists, temp_path_next_to, write_uns_entry
    from ..legacy import to_legacy_dict

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
        make_light(input_path, light_path, args.n_vars)
        results = _fit_light_copy(args, light_path, est, mode_text, say)
        legacy = to_legacy_dict(results)
        say(f"writing uns[{args.key_added!r}] into {args.input} (atomic update)")
        write_uns_entry(input_path, args.key_added, legacy, expect_stat=stat_before)
    finally:
        remove_if_exists(temp_light)
    return results


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
    with warnings.catch_warnings(record=True) as caught:
        est.fit(adata)  # the active warning filters still apply; recorded warnings are relayed below
    for w in caught:  # one line each, without the source line of the warning
        kind = "" if issubclass(w.category, UserWarning) else f"{w.category.__name__}: "
        print(f"{PROG}: warning: {kind}{w.message}", file=sys.stderr)
    return est.results_


# ----------------------------------------------------------------------------
# the summary (stdout)
# ----------------------------------------------------------------------------
def _print_summary(args: argparse.Namespace, results: Any, t_start: float) -> None:
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
    print(f"wrote uns[{args.key_added!r}] to {args.input} in {time.perf_counter() - t_start:.1f} s")


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
