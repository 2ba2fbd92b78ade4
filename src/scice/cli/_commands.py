"""``scice light`` and ``scice plot``."""

from __future__ import annotations

import argparse
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
    from .._h5io import read_uns_entry

    out = Path(args.out)
    if not out.parent.is_dir():
        raise CLIError(f"the folder of --out {args.out!r} does not exist.")
    check_output_is_a_file("--out", args.out, "ic.png", "an image file")
    _check_image_format(out, args.out)
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
    try:
        fig.savefig(out, dpi=args.dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    print(f"wrote {args.out}")
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
