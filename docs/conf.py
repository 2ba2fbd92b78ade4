"""Sphinx configuration for the scice documentation.

Build with::

    python -m sphinx -W -b html docs docs/_build/html

Cross-links to other projects' documentation (intersphinx) are added only for the
inventories that can be downloaded at build time, so an offline build (CI without
network) has no links but also no warnings. Set ``SCICE_DOCS_INTERSPHINX=0`` to
skip the download attempts altogether.
"""

from __future__ import annotations

import os
import urllib.request
from importlib.metadata import PackageNotFoundError, version

# -- project ------------------------------------------------------------------
project = "scice"
author = "scice developers"
copyright = "scice developers"
try:
    release = version("scice")
except PackageNotFoundError:  # building from a source tree without installing
    release = "0.0.0+unknown"
version = ".".join(release.split(".")[:2])

# -- extensions ---------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True  # stubs are written to docs/generated/ (not committed)
autosummary_imported_members = False
autodoc_typehints = "none"  # types are in the numpydoc sections
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}

numpydoc_show_class_members = False  # members come from the autosummary class template
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- MyST (design.md) -----------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# -- intersphinx ----------------------------------------------------------------
_INVENTORIES = {
    "python": "https://docs.python.org/3",
    "numpy": "https://numpy.org/doc/stable",
    "scipy": "https://docs.scipy.org/doc/scipy",
    "pandas": "https://pandas.pydata.org/docs",
    "anndata": "https://anndata.readthedocs.io/en/stable",
    "scanpy": "https://scanpy.readthedocs.io/en/stable",
    "sklearn": "https://scikit-learn.org/stable",
    "igraph": "https://python.igraph.org/en/stable/api",
    "joblib": "https://joblib.readthedocs.io/en/stable",
    "matplotlib": "https://matplotlib.org/stable",
}


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url/objects.inv`` can be downloaded now."""
    try:
        with urllib.request.urlopen(f"{url}/objects.inv", timeout=timeout) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - any failure means "no link to this project"
        return False


# A failed inventory download is a warning that -W turns into an error, so only
# the inventories that answer now are configured.
if os.environ.get("SCICE_DOCS_INTERSPHINX", "1") != "0":
    intersphinx_mapping = {name: (url, None) for name, url in _INVENTORIES.items() if _reachable(url)}
else:
    intersphinx_mapping = {}
intersphinx_timeout = 10

# -- what autodoc shows of classes -------------------------------------------------
# Classes show inherited members (a built-in strategy shows ``run``/``prefilter``
# of its base), except scikit-learn's plumbing (get_params, metadata routing, ...),
# which is documented by scikit-learn. ``fit_predict`` (from ClusterMixin) stays.
_SKLEARN_KEPT = {"fit_predict"}


def _skip_sklearn_members(app, what, name, obj, skip, options):
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn") and name not in _SKLEARN_KEPT:
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_members)


# -- HTML -----------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"scice {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Which clusterings of your single-cell data can you trust?",
    "fixed_sidebar": True,
    "page_width": "1180px",
    "body_max_width": "none",
}
