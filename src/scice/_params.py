"""One vocabulary for the method parameters of :class:`~scice.SCICE`, ``scice_clustering`` and ``scice run``.

Each parameter's description is written once, here. :func:`doc_params` puts it
into the docstrings of :class:`~scice.SCICE` and :func:`~scice.scice_clustering`
(with the default read from the decorated signature), and the command line
takes its first sentence (:meth:`ParamDoc.summary`) as the ``--help`` text, so
the API docs, the command-line help and the defaults cannot drift apart.
:data:`LEGACY_NAMES` is the one map from the legacy spellings (the legacy
scICEpy tool's and the command line's) to the estimator's parameter names.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "FRONT_PARAMS",
    "FRONT_TEXT",
    "LEGACY_NAMES",
    "LEGACY_PARAMS",
    "PARAMS",
    "ParamDoc",
    "doc_params",
    "estimator_params",
]

_T = TypeVar("_T")

#: Legacy spelling -> SCICE parameter name, used by ``scice_clustering`` and the command line.
LEGACY_NAMES: dict[str, str] = {
    "seed": "random_state",
    "n_workers": "n_jobs",
    "objective": "objective_function",
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{(?P<name>\w+)\}[ \t]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"\.(?:\s+(?=[A-Z])|\s*$)")
_ROLE = re.compile(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`")
_PROPER_NOUNS = ("Leiden",)


@dataclass(frozen=True)
class ParamDoc:
    """The numpydoc description of one method parameter.

    Parameters
    ----------
    type
        The numpydoc type, e.g. ``"int"`` (the default is added from the signature).
    text
        The description: reStructuredText lines without indentation. Its first
        sentence is also the command-line help.
    """

    type: str
    text: str

    def entry(self, name: str, default: Any) -> str:
        """The numpydoc entry ``name : type, default=...`` with the description below it."""
        body = "\n".join("    " + line if line else "" for line in self.text.splitlines())
        return f"{name} : {self.type}, {self._default_text(default)}\n{body}"

    def summary(self) -> str:
        """The first sentence as plain text: the command-line help.

        ``Leiden trials (seeds) per resolution.`` becomes ``Leiden trials (seeds)
        per resolution``; inline literals and roles lose their markup and the
        first word is lowercased unless it is a name.
        """
        flat = " ".join(self.text.split())
        first = _SENTENCE_END.split(flat, maxsplit=1)[0]
        plain = _ROLE.sub(r"\1", first).replace("``", "")
        if plain.split()[0] not in _PROPER_NOUNS and not plain[1:2].isupper():
            plain = plain[0].lower() + plain[1:]
        return plain

    def _default_text(self, default: Any) -> str:
        if default is None:
            return "default=None" if "None" in self.type else "optional"
        if isinstance(default, str):
            return f'default="{default}"'
        if isinstance(default, float):
            return "default=" + re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(default)).replace("e+", "e")
        return f"default={default!r}"


def _doc(type_: str, text: str) -> ParamDoc:
    return ParamDoc(type_, inspect.cleandoc(text))


#: The description of every SCICE parameter, by parameter name (in the order of the signature).
PARAMS: dict[str, ParamDoc] = {
    "cluster_range": _doc(
        "tuple (lo, hi) or list/range/array of int",
        """
        Cluster-range mode. A ``tuple`` is always an inclusive pair: ``(2, 10)``
        means targets 2, 3, ..., 10. A ``range``, ``list`` or array is always the
        explicit list of targets, e.g. ``list(range(2, 21))`` or ``[3, 5, 8]``.
        Targets must lie in ``[2, n_cells]``. Exactly one of ``cluster_range`` and
        ``resolution`` must be given.
        """,
    ),
    "resolution": _doc(
        "float or list of float",
        """
        Manual resolution mode: evaluate these Leiden resolutions (gamma) directly.
        Repeated values are evaluated once (input order kept).
        """,
    ),
    "graph_key": _doc(
        "str",
        """
        Key of the cell graph in ``adata.obsp``: a square, symmetric, non-negative
        matrix such as the ``connectivities`` of ``sc.pp.neighbors``. Used when
        fitting an AnnData object.
        """,
    ),
    "objective_function": _doc('{"CPM", "modularity"}', "Leiden quality function. Both use ``resolution``."),
    "n_trials": _doc(
        "int",
        """
        Leiden trials (seeds) per resolution.
        At least 2 (one trial cannot disagree with itself, so its IC would
        always be 1); below 10 the IC is coarse and a warning says so.
        """,
    ),
    "n_bootstrap": _doc("int", "Bootstrap resamples of the trials behind each IC. They give the IC distribution."),
    "n_iterations": _doc("int", "Leiden iterations per trial."),
    "max_iterations": _doc(
        "int",
        """
        Cap of the refinement, in cumulative Leiden iterations per trial counted
        from ``n_iterations`` (each round adds 2): 150 allows at most 70 rounds,
        as in the published method.
        """,
    ),
    "beta": _doc("float", "Leiden randomness in the refinement step (applied by igraph)."),
    "ic_threshold": _doc(
        "float",
        """
        Counts with IC below it are consistent (``consistent_clusters``); the
        finest of them is ``best_cluster``. 1.005 is the threshold of the
        original scICE.
        """,
    ),
    "remove_threshold": _doc(
        "float",
        """
        Pre-filter: a target whose search probes (at least two) all have IC at or
        above this is dropped before optimisation. Not used in manual resolution mode.
        """,
    ),
    "min_cluster_size": _doc(
        "int",
        """
        Clusters smaller than this do not count towards the cluster count and are
        merged into a neighbouring cluster in the final labels.
        """,
    ),
    "resolution_tolerance": _doc("float", "Absolute resolution tolerance of the search (cluster-range mode)."),
    "searcher": _doc("str or Searcher", "Search strategy (cluster-range mode)."),
    "optimizer": _doc(
        "str or Optimizer",
        """
        Per-target optimisation strategy: ``"refine"`` (the published refinement
        schedule), ``"converge"`` (each candidate's trials run once to
        convergence) or ``"grid"`` (no refinement).
        """,
    ),
    "scorer": _doc("str or ICScorer", "Similarity behind the IC."),
    "layout": _doc(
        "str or ParallelLayout",
        'Where work runs; ``"auto"`` is ``"serial"`` for ``n_jobs=1``, else ``"processes"``.',
    ),
    "n_jobs": _doc(
        "int",
        """
        Worker processes running Leiden (``-1``: all cores); results do not depend
        on it. The method's logic stays in this process. More than the cores of
        this machine (with a local backend) gives a warning.
        """,
    ),
    "random_state": _doc(
        "int, RandomState instance or None",
        """
        Random seed of every trial and bootstrap. The same value gives the same
        results for any number of workers and any joblib backend.
        """,
    ),
    "verbose": _doc(
        "bool or int",
        """
        Log progress (the search, each finished target, the summary) through
        the ``"scice"`` logger at INFO level, on stderr unless logging is
        configured, and show one progress bar over the whole fit (search
        included), counted in Leiden calls, in interactive sessions (a terminal
        or Jupyter); the log lines print through the bar.
        """,
    ),
    "checkpoint": _doc(
        "str or path-like",
        """
        Folder where the search outcome and each finished target are saved as
        they complete; while the search or a target runs, each trial set it
        computes is kept there too (compressed labels, deleted once the
        stage's result is saved). Rerunning the same fit (same graph,
        parameters and integer ``random_state``) with the same folder skips the
        finished work, reads back the saved trial sets of an unfinished target
        instead of running them again, and gives results identical to an
        uninterrupted run. A folder written by a different run is refused.
        """,
    ),
    "check_memory": _doc(
        "bool",
        """
        Estimate the memory the run needs before starting; warn above half of
        the available memory and refuse (``MemoryError``) above all of it.
        """,
    ),
}

#: The same descriptions under their legacy names (``seed``, ``n_workers``, ``objective``).
LEGACY_PARAMS: dict[str, ParamDoc] = {old: PARAMS[new] for old, new in LEGACY_NAMES.items()}


#: Parameters shared by the scanpy-style namespaces ``scice.tl``, ``scice.pl`` and ``scice.get``.
FRONT_PARAMS: dict[str, ParamDoc] = {
    "key": _doc(
        "str",
        """
        Key of the results in ``adata.uns`` (the ``key_added`` of
        :func:`scice.tl.scice`).
        """,
    ),
    "threshold": _doc(
        "float",
        """
        Counts with IC strictly below it are consistent. ``None``: the
        ``ic_threshold`` the results were computed with (1.005 by default).
        """,
    ),
    "ax": _doc("matplotlib.axes.Axes", "Axes to draw into; a new figure is created by default."),
    "show": _doc(
        "bool",
        """
        Show the figure (``plt.show()``) and return ``None``. ``None``: scanpy's
        ``sc.settings.autoshow`` when scanpy is installed, else ``True``.
        """,
    ),
    "save": _doc(
        "bool, str or path-like",
        """
        Save the figure, as scanpy does: ``True`` writes ``scice_<plot>.png``
        and a string is appended to that name (``save="_pbmc.pdf"`` writes
        ``scice_<plot>_pbmc.pdf``), both into scanpy's ``sc.settings.figdir``
        (``./figures`` without scanpy); a :class:`pathlib.Path` is written as it is.
        """,
    ),
    "return_fig": _doc("bool", "Return the :class:`~matplotlib.figure.Figure` (and do not show it)."),
}

#: Docstring blocks shared by the front end that are not one parameter's entry.
FRONT_TEXT: dict[str, str] = {
    "results_adata": inspect.cleandoc(
        """
        adata : AnnData, dict or SCICEResults
            AnnData with results in ``adata.uns[key]`` (or the results themselves).
        """
    ),
    "returns_plot": inspect.cleandoc(
        """
        matplotlib.axes.Axes, matplotlib.figure.Figure or None
            As scanpy's plots: the Figure with ``return_fig=True``, else the Axes
            when ``show=False``, else ``None``.
        """
    ),
}


def estimator_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for :class:`~scice.SCICE`: legacy names renamed with :data:`LEGACY_NAMES`.

    Parameters
    ----------
    params
        Parameter values by name, legacy (``seed``) or current (``random_state``).

    Returns
    -------
    dict
        The values by SCICE parameter name.
    """
    renamed = {LEGACY_NAMES.get(name, name): value for name, value in params.items()}
    if len(renamed) != len(params):
        raise TypeError(f"a parameter is given under both its legacy and its current name: {sorted(params)}")
    return renamed


def doc_params(**fragments: str | ParamDoc) -> Callable[[_T], _T]:
    """Fill the ``{name}`` placeholder lines of a docstring (after scanpy's ``_doc_params``).

    A placeholder is a line holding only ``{name}``. It is replaced by
    ``fragments[name]``, indented like the placeholder. A :class:`ParamDoc`
    becomes the numpydoc entry ``name : type, default=...`` with the default of
    parameter ``name`` in the decorated function's (or class's) signature, so the
    documented default is the one in the code. Other braces are left alone.

    Parameters
    ----------
    **fragments
        Text (or parameter descriptions) by placeholder name.

    Returns
    -------
    callable
        The decorator; it sets ``__doc__`` and returns the object itself.
    """

    def decorate(obj: _T) -> _T:
        signature = inspect.signature(obj)  # type: ignore[arg-type]

        def fill(match: re.Match) -> str:
            name, indent = match["name"], match["indent"]
            fragment = fragments[name]
            if isinstance(fragment, ParamDoc):
                fragment = fragment.entry(name, signature.parameters[name].default)
            return "\n".join(indent + line if line else "" for line in fragment.splitlines())

        obj.__doc__ = _PLACEHOLDER.sub(fill, obj.__doc__ or "")
        return obj

    return decorate
