"""The Sphinx documentation builds without a single warning (``-W``); about 10-15 s."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("myst_parser")
    # Build a copy, so autosummary's generated stubs do not land in the source tree.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "docs", src / "docs", ignore=shutil.ignore_patterns("_build", "generated", "__pycache__"))
    shutil.copytree(ROOT / "examples", src / "examples", ignore=shutil.ignore_patterns("out", "__pycache__"))
    shutil.copy2(ROOT / "design.md", src / "design.md")
    env = dict(os.environ, SCICE_DOCS_INTERSPHINX="0")  # no downloads: same result on- and offline
    out = tmp_path / "html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(src / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    for page in (
        "index.html",
        "api.html",
        "user_guide.html",
        "design.html",
        "examples.html",
        "generated/scice.SCICE.html",
        "generated/scice.strategies.ICScorer.html",
    ):
        assert (out / page).is_file(), f"{page} was not built"
    assert "Migrating from the legacy scICEpy tool" in (out / "user_guide.html").read_text(encoding="utf-8")
