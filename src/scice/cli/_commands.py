"""``scice light``, ``scice plot`` and ``scice apply``."""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shlex
import time
from pathlib import Path
from typing import Any

from .._memory import format_bytes
from ._common import EXIT_OK, EXIT_USAGE, CLIError, Reporter, check_output_is_a_file, keys_text


def cmd_light(args: argparse.Namespace) -> int:
    """``scice light``: write the light copy and say what it holds."""
    from .._h5io import inspect_h5ad, make_light

    say = Reporter(args.quiet)
    check_output_is_a_file("--output", args.output, f"{Path(args.input).stem}.light.h5ad")
    info = inspect_h5ad(args.input)
    t0 = time.perf_counter()
    light = make_light(args.input, args.output, args.n_vars)
    dropped = f"; dropped {', '.join(light.dropped)}" if light.dropped else ""
    say(
        f"wrote {args.output}: {light.n_obs} cells, {light.n_vars_kept} of {light.n_vars_total} variables, "
        f"obsp {keys_text(info.obsp_keys)}{dropped} ({format_bytes(os.path.getsize(args.output))}, "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    """``scice plot``: read uns[key] only, draw with :func:`scice.pl.plot_ic`, save."""
    from .._atomic import atomic_output, check_folder_writable, check_writable
    from .._h5io import read_uns_entry

    out = Path(args.out)
    check_output_is_a_file("--out", args.out, "ic.png", "an image file")
    _check_image_format(out, args.out)
    folder = Path(os.path.realpath(out)).parent
    if not folder.is_dir():
        raise CLIError(f"the folder of --out {args.out!r} does not exist.")
    check_folder_writable(folder, f"the folder of --out {args.out!r}")
    if out.exists():
        check_writable(out)
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

    from ..pl import plot_ic

    fig, _ = plot_ic(results, threshold=args.threshold, show_gamma=args.show_gamma)
    image = io.BytesIO()  # drawn in memory first: the file is written whole, or not at all
    try:
        fig.savefig(image, format=out.suffix.lstrip(".").lower(), dpi=args.dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    with atomic_output(out, "plot", size=image.tell()) as tmp:
        tmp.write_bytes(image.getvalue())
    print(f"wrote {args.out}")
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    """``scice apply``: write uns[KEY] of RESULTS into INPUT, atomically, if both hold the same cells."""
    from types import SimpleNamespace

    from .._anndata import check_cells_match
    from .._h5io import inspect_h5ad, read_obs_names, read_uns_entry, write_uns_entry

    say = Reporter(args.quiet)
    info = inspect_h5ad(args.results)
    key = args.key
    if key is None:
        if len(info.uns_keys) == 1:
            key = info.uns_keys[0]
        elif "scICE" in info.uns_keys:
            key = "scICE"
        else:
            raise CLIError(
                f"{args.results!r} has {len(info.uns_keys)} uns entries ({keys_text(info.uns_keys)}) and none "
                "is 'scICE'; pass --key naming the one to apply.",
                EXIT_USAGE,
            )
    key_added = args.key_added or key
    if "/" in key_added:
        raise CLIError(f"--key-added must be a name without '/', got {key_added!r}.", EXIT_USAGE)
    inspect_h5ad(args.input)
    data = read_uns_entry(args.results, key)
    if not isinstance(data, dict) or not {"n_cluster", "ic"} <= set(data):
        raise CLIError(f"uns[{key!r}] of {args.results!r} is not a scICE result (no 'n_cluster'/'ic' entries).")
    results = _decode_results(data, argparse.Namespace(key=key, input=args.results))
    if results.cell_names is None:
        results = dataclasses.replace(results, cell_names=read_obs_names(args.results))
    try:
        check_cells_match(
            SimpleNamespace(obs_names=read_obs_names(args.input)), results, f"apply them to {args.input!r}"
        )
    except ValueError as err:
        text = str(err).replace("adata.obs_names", "its cell names").replace(" (adata.n_obs)", "")
        raise CLIError(f"the results in {args.results!r} are not for these cells. {text}") from None
    write_uns_entry(args.input, key_added, data)
    say(f"wrote uns[{key_added!r}] of {args.results} into {args.input}; {args.results} can be deleted")
    return EXIT_OK


def _check_image_format(out: Path, text: str) -> None:
    """Usage error unless matplotlib can write the format named by the extension of ``--out``."""
    from matplotlib.figure import Figure

    supported = Figure().canvas.get_supported_filetypes()
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in supported:
        raise CLIError(
            f"cannot tell the image format of {text!r}: use one of the extensions "
            f"{', '.join('.' + k for k in sorted(supported))}.",
            EXIT_USAGE,
        )


def _decode_results(data: dict, args: argparse.Namespace) -> Any:
    """Decode uns[KEY] with :func:`scice.legacy.from_legacy_dict`, with command-line advice on failure.

    A dictionary scice did not write (e.g. the legacy scICEpy tool's, which has no
    ``format_version``), an incomplete or damaged one, or one from a newer scice
    is a problem with the file's contents (exit 1), not a crash.
    """
    from ..legacy import FORMAT_VERSION, NewerFormatError, NotSciceResultsError, from_legacy_dict

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
