"""One parameter vocabulary: shared descriptions, rendered docstrings, legacy names."""

from __future__ import annotations

import inspect
import math

import pytest

import scice
from scice import SCICE
from scice._params import LEGACY_NAMES, PARAMS, ParamDoc, doc_params, estimator_params

docscrape = pytest.importorskip("numpydoc.docscrape")


def _documented(obj) -> dict[str, tuple[str, list[str]]]:
    """Parameter name -> (numpydoc type line, description lines), from the rendered docstring."""
    params = docscrape.NumpyDocString(inspect.getdoc(obj))["Parameters"]
    out = {}
    for p in params:
        for name in p.name.split(", "):
            out[name] = (p.type, p.desc)
    return out


def _documented_default(type_line: str) -> str | None:
    """``"int, default=15"`` -> ``"15"``; ``"..., optional"`` -> ``None``."""
    tail = type_line.rsplit(", ", 1)[-1]
    if tail == "optional":
        return None
    assert tail.startswith("default="), type_line
    return tail[len("default=") :]


def _same_default(text: str | None, value) -> bool:
    if text is None or text == "None":
        return value is None
    if isinstance(value, str):
        return text == f'"{value}"'
    return math.isclose(float(text), float(value)) if isinstance(value, float) else text == repr(value)


@pytest.mark.parametrize("obj", [SCICE, scice.scice_clustering], ids=["SCICE", "scice_clustering"])
def test_docstring_documents_every_parameter_with_its_default(obj):
    documented = _documented(obj)
    signature = inspect.signature(obj).parameters
    assert list(documented) == list(signature)  # every parameter, in signature order, nothing else
    for name, (type_line, desc) in documented.items():
        assert desc, name
        default = signature[name].default
        if default is inspect.Parameter.empty:
            continue
        assert _same_default(_documented_default(type_line), default), (name, type_line, default)
    assert "{" + "n_trials}" not in obj.__doc__  # no placeholder left


def test_shared_parameters_have_one_description():
    """SCICE and scice_clustering render the same text for each shared parameter (legacy names mapped)."""
    ours = _documented(SCICE)
    legacy = _documented(scice.scice_clustering)
    shared = {name for name in legacy if LEGACY_NAMES.get(name, name) in ours}
    assert {"n_trials", "seed", "n_workers", "graph_key", "cluster_range"} <= shared
    for name in shared:
        assert legacy[name][1] == ours[LEGACY_NAMES.get(name, name)][1], name
    assert list(PARAMS) == list(inspect.signature(SCICE).parameters)


def test_scice_clustering_defaults_are_the_estimators():
    estimator = inspect.signature(SCICE).parameters
    for name, param in inspect.signature(scice.scice_clustering).parameters.items():
        new = LEGACY_NAMES.get(name, name)
        if new in estimator:
            assert param.default == estimator[new].default, name


def test_doc_params_fills_placeholders_at_their_indentation():
    def indented(n_trials=15, seed=None):
        """Do it.

        Parameters
        ----------
        {n_trials}
        {seed}
        {extra}

        Notes
        -----
        A set {like, this} and a dict {"a": 1} stay as written.
        """

    def flush(n_trials=15):
        pass

    flush.__doc__ = "Do it.\n\nParameters\n----------\n{n_trials}\n"  # as Python 3.13 stores docstrings

    extra = "extra : str\n    Two\n\n    lines."
    doc_params(n_trials=PARAMS["n_trials"], seed=PARAMS["random_state"], extra=extra)(indented)
    doc = inspect.cleandoc(indented.__doc__)  # Python 3.13 dedents docstrings itself
    assert "\nn_trials : int, default=15\n    Leiden trials (seeds) per resolution.\n" in doc
    assert "\nseed : int, RandomState instance or None, default=None\n    Random seed of" in doc
    assert "\nextra : str\n    Two\n\n    lines.\n" in doc
    assert 'A set {like, this} and a dict {"a": 1} stay as written.' in doc
    doc_params(n_trials=PARAMS["n_trials"])(flush)
    assert "\nn_trials : int, default=15\n    Leiden trials (seeds) per resolution.\n" in flush.__doc__


def test_doc_params_refuses_an_unknown_placeholder():
    def f(a=1):
        """{a}
        {b}
        """

    with pytest.raises(KeyError, match="b"):
        doc_params(a=PARAMS["n_trials"])(f)


def test_param_doc_defaults_and_summary():
    doc = ParamDoc("float", "Absolute ``tolerance`` of :func:`~scice.pl.plot_ic`, e.g. 1e-8. More text.")
    assert doc.entry("tol", 1e-8).splitlines()[0] == "tol : float, default=1e-8"
    assert doc.entry("tol", float("inf")).splitlines()[0] == "tol : float, default=inf"
    assert doc.summary() == "absolute tolerance of plot_ic, e.g. 1e-8"
    assert ParamDoc("str", "x").entry("key", "scICE").startswith('key : str, default="scICE"')
    assert ParamDoc("str", "x").entry("key", None).startswith("key : str, optional")
    assert ParamDoc("int or None", "x").entry("key", None).startswith("key : int or None, default=None")
    assert PARAMS["n_trials"].summary() == "Leiden trials (seeds) per resolution"  # a name keeps its capital
    assert PARAMS["n_jobs"].summary() == "worker processes running Leiden (-1: all cores); results do not depend on it"


def test_estimator_params_renames_legacy_names():
    assert estimator_params({"seed": 3, "n_workers": 2, "objective": "CPM", "n_trials": 5}) == {
        "random_state": 3,
        "n_jobs": 2,
        "objective_function": "CPM",
        "n_trials": 5,
    }
    with pytest.raises(TypeError, match="both its legacy and its current name"):
        estimator_params({"seed": 1, "random_state": 2})
    assert set(LEGACY_NAMES.values()) <= set(inspect.signature(SCICE).parameters)
