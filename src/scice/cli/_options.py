"""Argument types, and the options of ``scice run`` that set a parameter of the estimator.

A method option takes its ``--help`` text from the parameter's description
(:data:`scice._params.PARAMS`) and its default from the signature of
:class:`~scice.SCICE`, except for the deliberate differences in
:data:`CLI_DEFAULTS`. Its destination is the legacy name where there is one
(``--seed`` fills ``args.seed``, i.e. ``random_state``; see
:data:`scice._params.LEGACY_NAMES`).
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._params import LEGACY_NAMES, PARAMS

#: The defaults of ``scice run`` that deliberately differ from the estimator's:
#: parameter name -> (command-line default, why). ``--help`` shows both defaults.
CLI_DEFAULTS: dict[str, tuple[Any, str]] = {
    "random_state": (0, "a run is reproducible by default; the API, like scikit-learn, defaults to None"),
}

_INPUT_FIRST = " (put INPUT before the options that take several values)"


# ----------------------------------------------------------------------------
# argument types
# ----------------------------------------------------------------------------
def int_at_least(minimum: int, allow_minus_one: bool = False) -> Callable[[str], int]:
    """An argparse type: an integer ``>= minimum`` (or ``-1``, "all cores", if allowed)."""

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


def number(positive: bool = False, at_least: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number (not NaN), positive and finite or ``>= at_least`` if asked."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            hint = _INPUT_FIRST if text.endswith(".h5ad") else ""
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


def target(text: str) -> int:
    """An argparse type: a cluster count (checked against the cells later)."""
    try:
        return int(text)
    except ValueError:
        hint = _INPUT_FIRST if text.endswith(".h5ad") else ""
        raise argparse.ArgumentTypeError(f"expected an integer cluster count, got {text!r}{hint}") from None


def objective(text: str) -> str:
    """An argparse type: ``CPM`` or ``modularity``, in any case."""
    for name in ("CPM", "modularity"):
        if text.lower() == name.lower():
            return name
    raise argparse.ArgumentTypeError(f"choose 'CPM' or 'modularity', got {text!r}")


# ----------------------------------------------------------------------------
# method options
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodOption:
    """A ``scice run`` option that sets one parameter of :class:`~scice.SCICE`.

    Parameters
    ----------
    flag
        The option, e.g. ``"--n-trials"``; its destination is the flag's name
        with underscores (``n_trials``).
    type
        The argparse type; ``None`` keeps the text.
    metavar
        The value's name in the help.
    """

    flag: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments (``seed``)."""
        return self.flag[2:].replace("-", "_")

    @property
    def param(self) -> str:
        """The estimator parameter it sets (``random_state``)."""
        return LEGACY_NAMES.get(self.dest, self.dest)


#: The method options of ``scice run`` by argument group, in ``--help`` order.
METHOD_OPTIONS: dict[str, tuple[MethodOption, ...]] = {
    "files": (MethodOption("--graph-key", metavar="GRAPH_KEY"),),
    "method": (
        MethodOption("--n-trials", int_at_least(1), "T"),
        MethodOption("--n-bootstrap", int_at_least(1), "B"),
        MethodOption("--seed", int),
        MethodOption("--objective", objective, "{CPM,modularity}"),
        MethodOption("--min-cluster-size", int_at_least(1), "M"),
        MethodOption("--ic-threshold", number(at_least=1.0), "IC"),
    ),
    "advanced": (
        MethodOption("--n-iterations", int_at_least(1), "I"),
        MethodOption("--max-iterations", int_at_least(0), "R"),
        MethodOption("--beta", number(positive=True)),
        MethodOption("--remove-threshold", number(at_least=1.0), "IC"),
    ),
    "execution": (MethodOption("--n-workers", int_at_least(1, allow_minus_one=True), "W"),),
}


def estimator_default(param: str) -> Any:
    """The default of ``param`` in the signature of :class:`~scice.SCICE`."""
    from .._estimator import SCICE

    return inspect.signature(SCICE).parameters[param].default


def add_method_options(group: Any, options: tuple[MethodOption, ...]) -> None:
    """Add ``options`` to an argument group: help from the parameter's description, default from SCICE."""
    for option in options:
        default, help_text = estimator_default(option.param), PARAMS[option.param].summary()
        if option.param in CLI_DEFAULTS:
            api_default = f"{default:g}" if isinstance(default, float) else str(default)
            default = CLI_DEFAULTS[option.param][0]
            help_text += f" (default: %(default)s; the Python API default is {api_default})"
        group.add_argument(option.flag, type=option.type, default=default, metavar=option.metavar, help=help_text)


def method_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The values of every method option, by destination (legacy names such as ``seed``)."""
    return {option.dest: getattr(args, option.dest) for group in METHOD_OPTIONS.values() for option in group}


def in_option_words(text: str) -> str:
    """A message of the estimator in command-line words: ``n_jobs=4`` -> ``--n-workers 4``.

    Every estimator parameter with a ``scice run`` option is renamed, with its
    value if one follows ``=``; the advice to set parameters without an option
    (``check_memory=False``, ``optimizer__n_steps``) is dropped.
    """
    import re

    text = text.replace("; check_memory=False skips this check", "").replace(" or optimizer__n_steps", "")
    flags = {option.param: option.flag for group in METHOD_OPTIONS.values() for option in group}
    names = "|".join(map(re.escape, sorted(flags, key=len, reverse=True)))
    # a name, then optionally "=value" up to a space, , ; : ) or a sentence's full stop
    pattern = re.compile(rf"\b({names})\b(=(\S+?))?(?=[\s,;:)]|\.(\s|$)|$)")
    return pattern.sub(lambda m: flags[m.group(1)] + (f" {m.group(3)}" if m.group(3) else ""), text)
