"""The ``scice`` command line: light copies, atomic write-back, plots, user errors.

Every run is a real scICE run on a small synthetic graph; monkeypatching is used
only to inject faults (an exception, Ctrl-C, SIGTERM, a concurrent writer).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tracemalloc
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scice
from scice import _atomic, _fit, _h5io, _xhead
from scice._params import PARAMS
from scice._results import deep_equal
from scice.cli import _run, build_parser, main
from scice.cli._options import CLI_DEFAULTS, METHOD_OPTIONS
from scice.testing import blob_graph

N_BLOBS, BLOB_SIZE, N_VARS = 4, 50, 40
N_CELLS = N_BLOBS * BLOB_SIZE
# Small but real: 200 cells, targets 2..4, 4 trials, 10 bootstraps (about 2 s per run).
FAST = ["--n-trials", "4", "--n-bootstrap", "10", "--seed", "0", "--quiet"]


# ----------------------------------------------------------------------------
# fixtures and helpers
# ----------------------------------------------------------------------------
def _make_adata(x_format: str = "csr", n_vars: int = N_VARS) -> ad.AnnData:
    """An AnnData with everything a real file has: X, layers, obs/var metadata, obsm, obsp, varm, uns."""
    rng = np.random.default_rng(0)
    graph = blob_graph(n_blobs=N_BLOBS, size=BLOB_SIZE, k=8, seed=1, bridge=2)
    n = graph.shape[0]
    counts = sp.random(n, n_vars, density=0.3, format="csr", random_state=1, dtype=np.float32)
    counts.data = np.round(counts.data * 20) + 1
    X = {"csr": counts, "csc": counts.tocsc(), "dense": counts.toarray()}[x_format]
    obs = pd.DataFrame(
        {
            "blob": pd.Categorical(np.repeat([f"b{i}" for i in range(N_BLOBS)], BLOB_SIZE)),
            "n_counts": np.asarray(counts.sum(axis=1)).ravel(),
        },
        index=[f"cell{i}" for i in range(n)],
    )
    var = pd.DataFrame(
        {
            "gene_symbol": [f"GENE{i}" for i in range(n_vars)],
            "highly_variable": rng.random(n_vars) > 0.5,
            "mean": rng.random(n_vars),
        },
        index=[f"g{i}" for i in range(n_vars)],
    )
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.layers["counts"] = counts.copy()
    adata.layers["dense"] = counts.toarray()
    adata.obsm["X_pca"] = rng.normal(size=(n, 10))
    adata.obsm["X_umap"] = rng.normal(size=(n, 2))
    adata.obsp["connectivities"] = graph
    adata.obsp["distances"] = graph.copy()
    adata.varm["PCs"] = rng.normal(size=(n_vars, 10))
    adata.uns["note"] = "generated for test_cli"
    adata.uns["neighbors"] = {"params": {"n_neighbors": 8, "method": "umap"}}
    adata.uns["blob_colors"] = np.array(["#ff0000", "#00ff00", "#0000ff", "#000000"])
    return adata


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _copy(src: Path, folder: Path, name: str = "data.h5ad") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / name
    shutil.copyfile(src, dst)
    return dst


def _assert_same_matrix(a, b) -> None:
    a = a.toarray() if sp.issparse(a) else np.asarray(a)
    b = b.toarray() if sp.issparse(b) else np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def source_file(tmp_path_factory) -> Path:
    """A pristine .h5ad file (CSR X); tests copy it before touching it."""
    path = tmp_path_factory.mktemp("src") / "source.h5ad"
    _make_adata().write_h5ad(path)
    return path


@pytest.fixture()
def data_file(source_file, tmp_path) -> Path:
    """A private copy of :func:`source_file` alone in its own folder."""
    return _copy(source_file, tmp_path / "work")


@pytest.fixture(scope="module")
def ran_file(source_file, tmp_path_factory) -> Path:
    """A file that ``scice run`` has written results into (one run, shared read-only)."""
    path = _copy(source_file, tmp_path_factory.mktemp("ran"))
    assert main(["run", str(path), "--cluster-range", "2", "4", *FAST]) == 0
    return path


def _run_error(capsys, argv: list[str]) -> tuple[int, str]:
    """Run a command expected to fail with a user error; return (exit code, stderr)."""
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _without_warnings(err: str) -> str:
    """stderr without ``scice: warning: ...`` lines (e.g. the coarse-IC warning of the fast runs here)."""
    return "\n".join(line for line in err.splitlines() if not line.startswith("scice: warning: "))


def _assert_one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in _without_warnings(err).splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("scice: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ----------------------------------------------------------------------------
# help, version, entry point
# ----------------------------------------------------------------------------
def _console_script() -> str:
    found = shutil.which("scice") or shutil.which("scice", path=sysconfig.get_path("scripts"))
    if found is None:
        pytest.fail("the `scice` console script is not installed (pip install -e .)")
    return found


def test_console_script_help_subprocess():
    env = dict(os.environ)
    src = str(Path(scice.__file__).resolve().parents[1])  # the scice under test, not another install
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([_console_script(), "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for word in ("light", "run", "plot", "--version", "exit status"):
        assert word in proc.stdout


@pytest.mark.parametrize("command", ["light", "run", "plot"])
def test_subcommand_help_lists_every_option(command, capsys):
    sub = build_parser().get_default("_subparsers")[command]
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for action in sub._actions:
        for option in action.option_strings:
            assert option in out, option
        if action.option_strings and action.help:
            assert action.help.split()[0] in out  # every option is documented
    assert "INPUT" in out


def test_top_level_help_and_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "light" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"scice {scice.__version__}"


def test_python_dash_m_runs_the_command():
    env = dict(os.environ)
    src = str(Path(scice.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, "-m", "scice.cli", "--version"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"scice {scice.__version__}"


# ----------------------------------------------------------------------------
# method options: one vocabulary with the estimator
# ----------------------------------------------------------------------------
def _method_actions() -> dict[str, object]:
    """The argparse action of every method option of ``scice run``, by SCICE parameter name."""
    run = build_parser().get_default("_subparsers")["run"]
    by_dest = {action.dest: action for action in run._actions}
    return {option.param: by_dest[option.dest] for group in METHOD_OPTIONS.values() for option in group}


def test_method_option_defaults_are_the_estimators():
    """Every CLI default is SCICE's, except the documented differences (CLI_DEFAULTS)."""
    signature = inspect.signature(scice.SCICE).parameters
    actions = _method_actions()
    assert len(actions) == 12 and set(actions) <= set(signature)
    for param, action in actions.items():
        if param in CLI_DEFAULTS:
            cli_default, reason = CLI_DEFAULTS[param]
            assert action.default == cli_default != signature[param].default and reason, param
        else:
            assert action.default == signature[param].default, param
    assert set(CLI_DEFAULTS) == {"random_state"}


def test_method_option_help_is_the_parameters_description(capsys):
    actions = _method_actions()
    for param, action in actions.items():
        assert action.help.startswith(PARAMS[param].summary()), param
    assert "the Python API default" not in actions["ic_threshold"].help  # same default on both
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--n-trials T Leiden trials (seeds) per resolution (default: 15)" in out
    assert "(default: 1.005)" in out and "(default: 0; the Python API default is None)" in out


def test_method_options_reach_the_estimator_under_its_names():
    """``--seed``/``--n-workers``/``--objective`` set random_state/n_jobs/objective_function; the rest keep defaults."""
    args = build_parser().parse_args(
        ["run", "x.h5ad", "--targets", "3", "--seed", "5", "--n-workers", "2", "--objective", "modularity", "-q"]
    )
    est = _run._make_estimator(args, {"cluster_range": [3]})
    expected = scice.SCICE(
        cluster_range=[3], random_state=5, n_jobs=2, objective_function="modularity", ic_threshold=1.005
    ).get_params()
    assert est.get_params() == expected


# ----------------------------------------------------------------------------
# scice light
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("x_format", ["csr", "csc", "dense"])
def test_light_keeps_obs_obsm_obsp_uns_and_first_vars(x_format, tmp_path, capsys):
    orig = _make_adata(x_format)
    src = tmp_path / "big.h5ad"
    orig.write_h5ad(src)
    before = _sha256(src)
    out = tmp_path / "big.light.h5ad"

    assert main(["light", str(src), "--output", str(out), "--n-vars", "3"]) == 0
    assert "3 of 40 variables" in capsys.readouterr().err

    light = ad.read_h5ad(out)
    assert light.shape == (N_CELLS, 3)
    _assert_same_matrix(light.X, orig.X[:, :3])
    assert sp.issparse(light.X) == sp.issparse(orig.X)
    pd.testing.assert_frame_equal(light.obs, orig.obs)
    pd.testing.assert_frame_equal(light.var, orig.var.iloc[:3])
    assert set(light.obsm) == set(orig.obsm) and set(light.obsp) == set(orig.obsp)
    for key in orig.obsm:
        np.testing.assert_array_equal(light.obsm[key], orig.obsm[key])
    for key in orig.obsp:
        _assert_same_matrix(light.obsp[key], orig.obsp[key])
    assert deep_equal(dict(light.uns), dict(orig.uns))
    # anndata 0.13 lists X itself as layers[None]; no named layer may be kept
    assert [k for k in light.layers if k is not None] == [] and len(light.varm) == 0 and len(light.varp) == 0
    assert _sha256(src) == before  # the input is opened read-only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.h5ad", "big.light.h5ad"]


def test_light_n_vars_default_and_cap(data_file, tmp_path):
    out = tmp_path / "one.h5ad"
    assert main(["light", str(data_file), "-o", str(out), "-q"]) == 0
    assert ad.read_h5ad(out).shape == (N_CELLS, 1)
    assert main(["light", str(data_file), "-o", str(out), "--n-vars", "1000", "-q"]) == 0  # capped, replaced
    assert ad.read_h5ad(out).shape == (N_CELLS, N_VARS)


class _RecordingDataset:
    """Wraps an h5py dataset and records the size of every read."""

    def __init__(self, ds, log: list[int]):
        self._ds, self._log = ds, log
        self.dtype, self.shape = ds.dtype, ds.shape

    def __getitem__(self, sel):
        out = self._ds[sel]
        self._log.append(int(np.asarray(out).size))
        return out


@pytest.mark.parametrize("max_block_nnz", [1, 97, 1000, 10**9])
def test_csr_head_reads_bounded_blocks(tmp_path, max_block_nnz):
    """Only indptr is read whole; indices/data come in blocks of <= max(budget, one row)."""
    rng = np.random.default_rng(3)
    X = sp.random(300, 500, density=0.05, format="csr", random_state=rng, dtype=np.float64)
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        _h5io._io()[1](f, "X", X)
    reads: list[int] = []
    with h5py.File(path, "r") as f:
        g = f["X"]
        group = {
            "indptr": g["indptr"],
            "indices": _RecordingDataset(g["indices"], reads),
            "data": _RecordingDataset(g["data"], reads),
        }
        head = _xhead._read_csr_head(group, 300, 7, max_block_nnz)
    _assert_same_matrix(head, X[:, :7])
    largest_row = int(np.diff(X.indptr).max())
    assert max(reads) <= max(max_block_nnz, largest_row)
    if max_block_nnz < X.nnz:
        assert max(reads) < X.nnz  # never the whole matrix at once


def test_csc_head_reads_only_the_kept_columns(tmp_path):
    X = sp.random(300, 500, density=0.05, format="csc", random_state=4, dtype=np.float32)
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        _h5io._io()[1](f, "X", X)
    reads: list[int] = []
    with h5py.File(path, "r") as f:
        g = f["X"]
        group = {key: _RecordingDataset(g[key], reads) for key in ("indptr", "indices", "data")}
        head = _xhead._read_csc_head(group, 300, 7)
    _assert_same_matrix(head, X[:, :7])
    assert sum(reads) == 8 + 2 * X[:, :7].nnz


@pytest.mark.parametrize("x_format", ["dense", "csr"])
def test_light_memory_stays_far_below_x(x_format, tmp_path):
    """Peak Python/numpy memory while making the light file is a small fraction of X.

    obs, var, obsm, obsp and uns are read whole (they are kept or, for var, small
    metadata); X is the only element whose size must not matter.
    """
    n_obs = 2000
    graph = blob_graph(n_blobs=4, size=500, k=6, seed=2)
    if x_format == "dense":
        X = np.random.default_rng(5).random((n_obs, 1200))  # 19 MB float64
        x_bytes = X.nbytes
    else:
        X = sp.random(n_obs, 4000, density=0.1, format="csr", random_state=5, dtype=np.float64)
        x_bytes = X.data.nbytes + X.indices.nbytes  # 0.8 M stored entries, 9.6 MB
    big = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"c{i}" for i in range(n_obs)]))
    big.obsp["connectivities"] = graph
    src = tmp_path / "wide.h5ad"
    big.write_h5ad(src)
    del big, X
    _h5io.make_light(src, tmp_path / "warm.h5ad", n_vars=2)  # first-call imports are not the point
    tracemalloc.start()
    try:
        info = _h5io.make_light(src, tmp_path / "wide.light.h5ad", n_vars=2, max_block_nnz=20_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.n_vars_kept == 2
    assert peak < x_bytes / 8, (peak, x_bytes)


# ----------------------------------------------------------------------------
# scice run
# ----------------------------------------------------------------------------
def _assert_unchanged_except_uns(path: Path, orig: ad.AnnData, new_keys: set[str]) -> ad.AnnData:
    after = ad.read_h5ad(path)
    _assert_same_matrix(after.X, orig.X)
    assert set(after.layers) == set(orig.layers)
    for key in orig.layers:
        _assert_same_matrix(after.layers[key], orig.layers[key])
    pd.testing.assert_frame_equal(after.obs, orig.obs)
    pd.testing.assert_frame_equal(after.var, orig.var)
    for name in ("obsm", "varm"):
        assert set(getattr(after, name)) == set(getattr(orig, name))
        for key in getattr(orig, name):
            np.testing.assert_array_equal(getattr(after, name)[key], getattr(orig, name)[key])
    assert set(after.obsp) == set(orig.obsp)
    for key in orig.obsp:
        _assert_same_matrix(after.obsp[key], orig.obsp[key])
    assert set(after.uns) == set(orig.uns) | new_keys
    assert deep_equal({k: after.uns[k] for k in orig.uns}, dict(orig.uns))
    return after


def test_run_writes_only_uns_and_matches_the_python_api(source_file, ran_file, capsys):
    orig = ad.read_h5ad(source_file)
    after = _assert_unchanged_except_uns(ran_file, orig, {"scICE"})
    from scice.legacy import from_legacy_dict

    stored = from_legacy_dict(after.uns["scICE"])
    direct = (
        scice.SCICE(cluster_range=(2, 4), n_trials=4, n_bootstrap=10, random_state=0, ic_threshold=1.005)
        .fit(orig)
        .results_
    )
    np.testing.assert_array_equal(stored.n_cluster, direct.n_cluster)
    np.testing.assert_array_equal(stored.ic, direct.ic)
    np.testing.assert_array_equal(stored.gamma, direct.gamma)
    assert stored.best_cluster == direct.best_cluster
    for mine, theirs in zip(stored.clusters, direct.clusters, strict=False):
        np.testing.assert_array_equal(mine.best_labels, theirs.best_labels)
    np.testing.assert_array_equal(np.asarray(after.uns["scICE"]["cell_names"]).astype(str), np.asarray(orig.obs_names))
    assert sorted(p.name for p in ran_file.parent.iterdir()) == [ran_file.name]  # no temporary files


def test_run_prints_summary_and_progress(data_file, capsys):
    argv = ["run", str(data_file), "--targets", "2", "4", "--n-trials", "4", "--n-bootstrap", "10"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "n_cluster" in captured.out and "consistent" in captured.out and "IC" in captured.out
    assert "best: " in captured.out and "wrote uns['scICE']" in captured.out
    assert "writing the light copy" in captured.err and "atomic update" in captured.err
    from scice.legacy import from_legacy_dict

    results = from_legacy_dict(ad.read_h5ad(data_file).uns["scICE"])
    for k in results.n_cluster:
        assert f"\n{k:>9d}  " in "\n" + captured.out
    # --quiet: no progress on stderr, the table still on stdout
    assert main([*argv, "--quiet", "--key-added", "scICE_q"]) == 0
    captured = capsys.readouterr()
    assert "scice:" not in _without_warnings(captured.err) and "n_cluster" in captured.out


def test_run_resolution_mode_adds_second_key_and_keeps_light(source_file, ran_file, tmp_path):
    path = _copy(ran_file, tmp_path / "work")
    light = tmp_path / "kept.light.h5ad"
    argv = [
        "run",
        str(path),
        "--resolution",
        "0.001",
        "0.01",
        "--key-added",
        "scICE_manual",
        "--light-output",
        str(light),
        "--n-vars",
        "2",
        "--objective",
        "cpm",
        *FAST,
    ]
    assert main(argv) == 0
    orig = ad.read_h5ad(ran_file)
    after = _assert_unchanged_except_uns(path, orig, {"scICE_manual"})
    assert deep_equal(dict(after.uns["scICE"]), dict(orig.uns["scICE"]))  # the earlier result is untouched
    assert str(after.uns["scICE_manual"]["analysis_mode"]) == "resolution"
    assert ad.read_h5ad(light).shape == (N_CELLS, 2)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    # running again replaces the entry in place
    assert main(argv) == 0
    again = ad.read_h5ad(path)
    first, second = dict(after.uns["scICE_manual"]), dict(again.uns["scICE_manual"])
    assert set(first) == set(second)
    differ = sorted(k for k in first if not deep_equal(first[k], second[k]))
    assert differ in ([], ["timings"])  # same seed, same results; only the wall-clock timings differ


def test_run_reads_x_only_through_the_light_copy(data_file, monkeypatch):
    """The big file is never opened with anndata.read_h5ad (only the light copy is)."""
    opened: list[Path] = []
    real = ad.read_h5ad

    def spy(path, *args, **kwargs):
        opened.append(Path(path).resolve())
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ad, "read_h5ad", spy)
    assert main(["run", str(data_file), "--targets", "4", *FAST]) == 0
    assert opened and data_file.resolve() not in opened


def _symlink(link: Path, target: Path) -> None:
    """A relative symlink ``link -> target``, or skip where symlinks are unavailable."""
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        link.symlink_to(os.path.relpath(target, link.parent))
    except (OSError, NotImplementedError) as err:
        pytest.skip(f"cannot create symlinks here: {err}")


def test_run_through_a_symlink_updates_the_real_file_and_keeps_the_link(source_file, data_file, tmp_path, monkeypatch):
    """The file the link points to gets the results atomically; the link stays a link to it."""
    link = tmp_path / "links" / "data.h5ad"
    _symlink(link, data_file)
    link_text = os.readlink(link)
    real_folder = data_file.parent.resolve()
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def replace(src, dst):  # records, then renames as usual
        renames.append((Path(src).resolve(), Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(_h5io.os, "replace", replace)
    assert main(["run", str(link), "--cluster-range", "2", "3", *FAST]) == 0

    assert link.is_symlink() and os.readlink(link) == link_text
    after = _assert_unchanged_except_uns(data_file, ad.read_h5ad(source_file), {"scICE"})
    assert str(after.uns["scICE"]["analysis_mode"]) == "cluster_range"
    # the results went onto the real path, from a temporary file in the real file's folder
    assert renames and renames[-1] == (renames[-1][0], data_file.resolve())
    assert all(src.parent == real_folder and dst.parent.resolve() == real_folder for src, dst in renames)
    assert [p.name for p in link.parent.iterdir()] == [link.name]  # nothing left next to the link
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]  # nor next to the file


def test_light_output_through_a_symlink_keeps_the_link(data_file, tmp_path):
    real = tmp_path / "store" / "data.light.h5ad"
    real.parent.mkdir()
    real.write_bytes(b"an old light copy")
    link = tmp_path / "links" / "data.light.h5ad"
    _symlink(link, real)
    assert main(["light", str(data_file), "-o", str(link), "--n-vars", "2", "-q"]) == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert ad.read_h5ad(real).shape == (N_CELLS, 2)
    assert [p.name for p in real.parent.iterdir()] == [real.name]
    assert [p.name for p in link.parent.iterdir()] == [link.name]


def test_input_option_is_an_alias_of_the_positional_input(data_file, tmp_path, capsys):
    """``--input FILE``, the spelling of the legacy wrapper scripts, works for run and light."""
    light = tmp_path / "alias.light.h5ad"
    assert main(["light", "--input", str(data_file), "--output", str(light), "--n-vars", "2", "-q"]) == 0
    assert ad.read_h5ad(light).shape == (N_CELLS, 2)
    assert main(["run", "--input", str(data_file), "--cluster-range", "2", "3", *FAST]) == 0
    assert "scICE" in _h5io.inspect_h5ad(data_file).uns_keys
    assert "wrote uns['scICE']" in capsys.readouterr().out
    for command in ("light", "run"):  # INPUT still reads as required in the usage line
        usage = build_parser().get_default("_subparsers")[command].format_usage()
        assert usage.rstrip().endswith(" INPUT") and "[INPUT]" not in usage and "[--input INPUT]" in usage


# ----------------------------------------------------------------------------
# faults: the input stays byte-identical and no temporary file remains
# ----------------------------------------------------------------------------
def _fail_fit(exc: BaseException):
    def fit(self, X, y=None):
        raise exc

    return fit


def test_run_failure_in_fit_leaves_input_identical(data_file, monkeypatch):
    before = _sha256(data_file)
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(RuntimeError("injected fit failure")))
    with pytest.raises(RuntimeError, match="injected"):  # unexpected errors keep their traceback
        main(["run", str(data_file), "--cluster-range", "2", "4", *FAST])
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_run_ctrl_c_leaves_input_identical(data_file, monkeypatch, capsys):
    before = _sha256(data_file)
    light = data_file.parent / "kept.light.h5ad"
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(KeyboardInterrupt()))
    code = main(["run", str(data_file), "--cluster-range", "2", "4", "--light-output", str(light), *FAST])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert _sha256(data_file) == before
    # a requested light copy is a product, not a temporary file: it stays
    assert sorted(p.name for p in data_file.parent.iterdir()) == sorted([data_file.name, light.name])


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_run_sigterm_cleans_up(data_file, monkeypatch, capsys):
    before = _sha256(data_file)

    def fit(self, X, y=None):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM was not turned into an interrupt")

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(scice.SCICE, "fit", fit)
    assert main(["run", str(data_file), "--targets", "3", *FAST]) == 130
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_run_failure_while_writing_uns_leaves_input_identical(data_file, monkeypatch, capsys):
    """The copy is half written when the write fails: the input must not be, and the results are kept aside."""
    before = _sha256(data_file)
    read_elem, write_elem = _h5io._io()
    calls: list[str] = []

    def failing_write(group, key, value, **kwargs):
        calls.append(key)
        write_elem(group, key, {"partial": np.arange(3)})  # leave a half-written entry in the copy
        raise OSError("injected: disk full")

    monkeypatch.setattr(_h5io, "_io", lambda: (read_elem, failing_write))
    code, err = _run_error(capsys, ["run", str(data_file), "--targets", "4", *FAST])
    assert code == 1
    side = data_file.with_name("data.scice-results.h5ad")
    _assert_one_line_error(err, "injected: disk full", f"the results were saved to '{side}'", "scice apply")
    assert calls == ["scICE"]
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == sorted([data_file.name, side.name])


def test_run_interrupt_at_the_final_rename_leaves_input_identical(data_file, monkeypatch, capsys):
    before = _sha256(data_file)
    real_replace = os.replace
    target = data_file.resolve()

    def replace(src, dst):
        if Path(dst).resolve() == target:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(_h5io.os, "replace", replace)
    monkeypatch.setattr(_atomic.os, "replace", replace)
    code, err = _run_error(capsys, ["run", str(data_file), "--targets", "4", *FAST])
    assert code == 130
    side = data_file.with_name("data.scice-results.h5ad")
    _assert_one_line_error(err, "interrupted", f"the results were saved to '{side}'")
    assert _sha256(data_file) == before
    # the finished results are not lost: only the side file is new
    assert sorted(p.name for p in data_file.parent.iterdir()) == sorted([data_file.name, side.name])


def test_run_refuses_to_overwrite_a_concurrent_change(data_file, monkeypatch, capsys):
    real_fit = scice.SCICE.fit

    def fit_while_someone_writes(self, X, y=None):
        out = real_fit(self, X, y)
        with h5py.File(data_file, "r+") as f:  # another program edits the file during the run
            f["uns"].create_dataset("other_writer", data=np.arange(1000))
        return out

    monkeypatch.setattr(scice.SCICE, "fit", fit_while_someone_writes)
    code, err = _run_error(capsys, ["run", str(data_file), "--targets", "4", *FAST])
    assert code == 1
    side = data_file.with_name("data.scice-results.h5ad")
    _assert_one_line_error(
        err, "modified by another process", f"saved to '{side}'", f"apply them with: scice apply {side} {data_file}"
    )
    with h5py.File(data_file, "r") as f:
        assert "other_writer" in f["uns"] and "scICE" not in f["uns"]
    assert sorted(p.name for p in data_file.parent.iterdir()) == sorted([data_file.name, side.name])
    # the side file holds the finished results; scice apply writes them into the (changed) input
    saved = scice.from_legacy_dict(ad.read_h5ad(side).uns["scICE"])
    assert saved.n_cluster.tolist() and saved.cell_names.tolist() == [f"cell{i}" for i in range(N_CELLS)]
    assert main(["apply", str(side), str(data_file), "--quiet"]) == 0
    after = ad.read_h5ad(data_file)
    assert "other_writer" in after.uns
    assert deep_equal(dict(after.uns["scICE"]), dict(ad.read_h5ad(side).uns["scICE"]))


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_run_refuses_read_only_input_before_computing(data_file, monkeypatch, capsys):
    """Refused from the mode bits, so also when running as root (os.access says yes to root)."""
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(AssertionError("must fail before fitting")))
    before = _sha256(data_file)
    data_file.chmod(0o444)
    try:
        code, err = _run_error(capsys, ["run", str(data_file), "--targets", "4", *FAST])
    finally:
        data_file.chmod(0o644)
    assert code == 1
    _assert_one_line_error(err, "read-only", "nothing was computed", "--output")
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_run_refuses_read_only_folder_before_computing(data_file, monkeypatch, capsys):
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(AssertionError("must fail before fitting")))
    before = _sha256(data_file)
    data_file.parent.chmod(0o555)
    try:
        code, err = _run_error(capsys, ["run", str(data_file), "--targets", "4", *FAST])
        listing = sorted(p.name for p in data_file.parent.iterdir())
    finally:
        data_file.parent.chmod(0o755)
    assert code == 1
    _assert_one_line_error(err, "read-only", "nothing was computed")
    assert _sha256(data_file) == before
    assert listing == [data_file.name]


# ----------------------------------------------------------------------------
# scice plot
# ----------------------------------------------------------------------------
def test_plot_writes_an_image_from_uns_only(ran_file, tmp_path, monkeypatch, capsys):
    def no_full_read(*args, **kwargs):
        raise AssertionError("plot must not load the AnnData")

    monkeypatch.setattr(ad, "read_h5ad", no_full_read)
    before = _sha256(ran_file)
    png = tmp_path / "ic.png"
    argv = [
        "plot",
        str(ran_file),
        "--out",
        str(png),
        "--threshold",
        "1.01",
        "--dpi",
        "50",
        "--no-gamma",
        "--key",
        "scICE",
    ]
    assert main(argv) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert _sha256(ran_file) == before
    assert "wrote" in capsys.readouterr().out


def test_plot_threshold_inf_marks_every_count_consistent(ran_file, tmp_path, capsys):
    png = tmp_path / "ic.png"
    assert main(["plot", str(ran_file), "--out", str(png), "--threshold", "inf", "--dpi", "50"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "Traceback" not in captured.err


def _legacy_tool_dict() -> dict:
    """What the legacy scICEpy tool stored in uns['scICE'] (no 'format_version')."""
    return {
        "analysis_mode": "cluster_range",
        "n_cluster": np.array([2, 3]),
        "ic": np.array([1.0, 1.01]),
        "gamma": np.array([1e-4, 2e-4]),
    }


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("legacy_tool", ("not written by scice", "'format_version'", "rerun `scice run ", "recompute")),
        ("incomplete", ("not a valid scICE result", "'ic_vec'", "rerun `scice run ", "recompute")),
        ("newer_version", ("newer scice", "version 99", "pip install -U scice")),
    ],
)
def test_plot_of_results_scice_cannot_decode_is_a_user_error(case, fragments, ran_file, tmp_path, capsys):
    path = _copy(ran_file, tmp_path / "work")
    if case == "legacy_tool":
        entry = _legacy_tool_dict()
    else:
        entry = dict(_h5io.read_uns_entry(ran_file, "scICE"))
        if case == "incomplete":
            del entry["ic_vec"]
        else:
            entry["format_version"] = np.int64(99)
    _h5io.write_uns_entry(path, "scICE", entry)
    png = tmp_path / "ic.png"
    code, err = _run_error(capsys, ["plot", str(path), "--out", str(png)])
    assert code == 1
    _assert_one_line_error(err, f"uns['scICE'] of {str(path)!r}", *fragments)
    assert "scice.scice_clustering" not in err  # command-line advice, not Python advice
    assert not png.exists()


def test_plot_out_folder_is_a_usage_error(ran_file, tmp_path, capsys):
    folder = tmp_path / "ic.png"
    folder.mkdir()
    code, err = _run_error(capsys, ["plot", str(ran_file), "--out", str(folder)])
    assert code == 2
    _assert_one_line_error(err, "is a folder", "path of an image file")
    assert list(folder.iterdir()) == []


# ----------------------------------------------------------------------------
# user errors: one line on stderr, no traceback, non-zero exit
# ----------------------------------------------------------------------------
def test_missing_file(tmp_path, capsys):
    for argv in (
        ["run", str(tmp_path / "nope.h5ad"), "--cluster-range", "2", "4"],
        ["light", str(tmp_path / "nope.h5ad"), "-o", str(tmp_path / "l.h5ad")],
        ["plot", str(tmp_path / "nope.h5ad"), "--out", str(tmp_path / "p.png")],
    ):
        code, err = _run_error(capsys, argv)
        assert code == 1
        _assert_one_line_error(err, "nope.h5ad", "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_not_an_h5ad_file(tmp_path, capsys):
    text = tmp_path / "notes.h5ad"
    text.write_text("cell,gene\n1,2\n")
    code, err = _run_error(capsys, ["run", str(text), "--cluster-range", "2", "4"])
    assert code == 1
    _assert_one_line_error(err, "not an .h5ad file")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("values", data=np.arange(4))
    code, err = _run_error(capsys, ["light", str(other), "-o", str(tmp_path / "l.h5ad")])
    assert code == 1
    _assert_one_line_error(err, "not an .h5ad file", "'obs'")
    assert not (tmp_path / "l.h5ad").exists()


def test_missing_graph_key_lists_available(data_file, capsys):
    before = _sha256(data_file)
    code, err = _run_error(capsys, ["run", str(data_file), "--cluster-range", "2", "4", "--graph-key", "knn"])
    assert code == 1
    _assert_one_line_error(err, "'knn'", "'connectivities'", "'distances'")
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_invalid_graph_is_a_user_error(tmp_path, capsys):
    adata = _make_adata()
    bad = adata.obsp["connectivities"].tolil()
    bad[0, 1] = 5.0  # breaks symmetry
    adata.obsp["connectivities"] = bad.tocsr()
    path = tmp_path / "asym.h5ad"
    adata.write_h5ad(path)
    before = _sha256(path)
    code, err = _run_error(capsys, ["run", str(path), "--targets", "3", *FAST])
    assert code == 1
    _assert_one_line_error(err, "not symmetric")
    assert _sha256(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["asym.h5ad"]


@pytest.mark.parametrize(
    ("range_args", "fragment"),
    [
        (["--cluster-range", "6", "3"], "reversed"),
        (["--cluster-range", "1", "4"], ">= 2"),
        (["--cluster-range", "2", str(N_CELLS + 1)], f"number of cells ({N_CELLS})"),
        (["--targets", "3", "1"], "--targets"),
    ],
)
def test_bad_cluster_range(data_file, capsys, range_args, fragment):
    before = _sha256(data_file)
    code, err = _run_error(capsys, ["run", str(data_file), *range_args])
    assert code == 2
    _assert_one_line_error(err, fragment)
    assert _sha256(data_file) == before


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "{f}"], "one of the arguments --cluster-range --targets --resolution is required"),
        (["run", "{f}", "--cluster-range", "2", "4", "--resolution", "0.1"], "not allowed with"),
        (["run", "{f}", "--cluster-range", "2", "3", "4"], "use --targets"),
        (["run", "{f}", "--cluster-range", "2", "4", "--n-trials", "0"], "--n-trials"),
        (["run", "{f}", "--resolution", "-0.1"], "positive"),
        (["run", "--resolution", "0.1", "{f}"], "put INPUT before"),
        (["run", "{f}", "--targets", "3", "--objective", "louvain"], "modularity"),
        (["light", "{f}"], "--output"),
        (["run", "{f}", "--input", "{f}", "--targets", "3"], "not both"),
        (["run", "--targets", "3"], "INPUT (the .h5ad file, or --input INPUT)"),
        (["light", "--input", "{f}", "{f}", "-o", "light.h5ad"], "not both"),
        (["light", "-o", "light.h5ad"], "INPUT (the .h5ad file, or --input INPUT)"),
        (["plot", "{f}", "--out", "x.png", "--threshold", "0.9"], ">= 1"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2(data_file, capsys, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main([a.format(f=data_file) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_plot_errors(data_file, tmp_path, capsys):
    code, err = _run_error(capsys, ["plot", str(data_file), "--out", str(tmp_path / "ic.png")])
    assert code == 1
    _assert_one_line_error(err, "'scICE'", "'note'", "'neighbors'")  # lists the uns keys
    code, err = _run_error(capsys, ["plot", str(data_file), "--out", str(tmp_path / "ic.png"), "--key", "neighbors"])
    assert code == 1
    _assert_one_line_error(err, "not a scICE result")
    code, err = _run_error(capsys, ["plot", str(data_file), "--out", str(tmp_path / "ic.xyz")])
    assert code == 2
    _assert_one_line_error(err, "image format")
    code, err = _run_error(capsys, ["plot", str(data_file), "--out", str(tmp_path / "missing" / "ic.png")])
    assert code == 1
    _assert_one_line_error(err, "does not exist")
    assert not list(tmp_path.glob("ic.*"))


def test_light_output_must_differ_from_input(data_file, capsys):
    before = _sha256(data_file)
    code, err = _run_error(capsys, ["light", str(data_file), "-o", str(data_file)])
    assert code == 1
    _assert_one_line_error(err, "is the input file")
    code, err = _run_error(capsys, ["run", str(data_file), "--targets", "3", "--light-output", str(data_file)])
    assert code == 2
    _assert_one_line_error(err, "is the input file")
    assert _sha256(data_file) == before


@pytest.mark.parametrize(
    ("command", "option", "where"),
    [
        ("run", "--light-output", "existing"),
        ("run", "--light-output", "trailing_slash"),
        ("light", "--output", "existing"),
    ],
)
def test_light_output_folder_is_a_usage_error_before_any_work(command, option, where, data_file, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("must fail before any work")

    folder = data_file.parent / "lights"
    if where == "existing":
        folder.mkdir()
        text = str(folder)
    else:
        text = str(folder) + os.sep  # a folder that does not exist yet
    monkeypatch.setattr(_h5io, "make_light", no_work)
    monkeypatch.setattr(scice.SCICE, "fit", no_work)
    before = _sha256(data_file)
    argv = [command, str(data_file), option, text]
    if command == "run":
        argv += ["--cluster-range", "2", "3", *FAST]
    code, err = _run_error(capsys, argv)
    assert code == 2
    _assert_one_line_error(err, f"{option} {text!r} is a folder", "give the path of a file")
    assert _sha256(data_file) == before
    expected = [data_file.name, folder.name] if where == "existing" else [data_file.name]
    assert sorted(p.name for p in data_file.parent.iterdir()) == sorted(expected)  # no temporary file
    if where == "existing":
        assert list(folder.iterdir()) == []


def test_run_with_no_evaluable_count_reports_it(tmp_path, capsys):
    """4 disconnected blobs cannot give 2 CPM clusters: the run succeeds and says so; plot refuses."""
    adata = ad.AnnData(X=np.ones((160, 2)), obs=pd.DataFrame(index=[f"c{i}" for i in range(160)]))
    adata.obsp["connectivities"] = blob_graph(n_blobs=4, size=40, k=8, seed=0)
    path = tmp_path / "disconnected.h5ad"
    adata.write_h5ad(path)
    assert main(["run", str(path), "--targets", "2", *FAST]) == 0
    captured = capsys.readouterr()
    assert "(no cluster count could be evaluated)" in captured.out
    assert "not covered: 2 clusters" in captured.out
    assert "scice: warning: No cluster count could be evaluated" in captured.err
    assert "Traceback" not in captured.err and "warnings.warn" not in captured.err
    stored = ad.read_h5ad(path).uns["scICE"]
    assert np.asarray(stored["n_cluster"]).size == 0
    code, err = _run_error(capsys, ["plot", str(path), "--out", str(tmp_path / "ic.png")])
    assert code == 1
    _assert_one_line_error(err, "no cluster count to plot")


# ----------------------------------------------------------------------------
# a finished run is never lost; every write fails with one line
# ----------------------------------------------------------------------------
@pytest.fixture()
def small_disk(tmp_path):
    """Mount a small tmpfs (needs root and mount permission); skip where that is impossible."""
    mounts: list[Path] = []

    def mount(size_kib: int) -> Path:
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        if sys.platform != "linux" or shutil.which("mount") is None:
            pytest.skip("tmpfs mounts need Linux")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(point)], capture_output=True, timeout=30
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until ``leave`` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _stored(path: Path, key: str = "scICE") -> scice.SCICEResults:
    return scice.from_legacy_dict(ad.read_h5ad(path).uns[key])


def _same_results(a: scice.SCICEResults, b: scice.SCICEResults) -> None:
    np.testing.assert_array_equal(a.n_cluster, b.n_cluster)
    np.testing.assert_array_equal(a.ic, b.ic)
    np.testing.assert_array_equal(a.gamma, b.gamma)
    for mine, theirs in zip(a.clusters, b.clusters, strict=True):
        np.testing.assert_array_equal(mine.best_labels, theirs.best_labels)
        np.testing.assert_array_equal(mine.ic_vec, theirs.ic_vec)


@pytest.fixture(scope="module")
def direct_results(source_file) -> scice.SCICEResults:
    """``--targets 4`` with the FAST options, through the Python API."""
    adata = ad.read_h5ad(source_file)
    return scice.SCICE(cluster_range=[4], n_trials=4, n_bootstrap=10, random_state=0).fit(adata).results_


def _fill_after_fit(monkeypatch, folder: Path, leave: int) -> None:
    real_fit = scice.SCICE.fit

    def fit_then_fill(self, X, y=None):
        out = real_fit(self, X, y)
        _fill(folder, leave)  # another program fills the disk during the run
        return out

    monkeypatch.setattr(scice.SCICE, "fit", fit_then_fill)


@pytest.mark.parametrize("variant", ["tmpfs", "injected"])
def test_write_back_onto_a_full_disk_saves_the_results_aside(
    variant, source_file, direct_results, small_disk, tmp_path, monkeypatch, capsys
):
    """Room for the pre-check, not for the results: one line, input intact, results in the current folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    if variant == "tmpfs":
        disk = small_disk(2 * 1024)
        data = _copy(source_file, disk)
        _fill_after_fit(monkeypatch, disk, leave=64 * 1024)
        expected = "not enough free space"
    else:
        data = _copy(source_file, tmp_path / "work")
        real_enter = _atomic.atomic_output

        @contextlib.contextmanager
        def full_next_to_input(target, tag="write", size=None):
            if Path(os.path.realpath(target)).parent == data.parent:
                _enospc()
            with real_enter(target, tag, size) as tmp:
                yield tmp

        real_fit = scice.SCICE.fit

        def fit_then_fill(self, X, y=None):
            out = real_fit(self, X, y)
            # from now on the write-back and the side file next to the input fail, as on a full disk
            monkeypatch.setattr(_h5io, "atomic_output", full_next_to_input)
            return out

        monkeypatch.setattr(scice.SCICE, "fit", fit_then_fill)
        expected = "No space left on device"
    before = _sha256(data)
    code, err = _run_error(capsys, ["run", str(data), "--targets", "4", *FAST])
    assert code == 1
    side = cwd / "data.scice-results.h5ad"
    _assert_one_line_error(err, expected, f"the results were saved to '{side}'", f"scice apply {side} {data}")
    assert _sha256(data) == before
    assert sorted(p.name for p in data.parent.iterdir() if p.name != "filler") == [data.name]
    _same_results(_stored(side), direct_results)


def test_side_file_goes_to_the_checkpoint_folder_when_the_input_folder_is_full(
    source_file, small_disk, tmp_path, monkeypatch, capsys
):
    disk = small_disk(2 * 1024)
    data = _copy(source_file, disk)
    ckpt = tmp_path / "ckpt"
    _fill_after_fit(monkeypatch, disk, leave=64 * 1024)
    code, err = _run_error(capsys, ["run", str(data), "--targets", "4", "--checkpoint", str(ckpt), *FAST])
    assert code == 1
    _assert_one_line_error(err, "not enough free space", f"saved to '{ckpt / 'data.scice-results.h5ad'}'")


def test_side_file_never_replaces_an_earlier_one(data_file, monkeypatch, capsys):
    monkeypatch.setattr(_h5io, "write_uns_entry", _enospc)
    first = data_file.with_name("data.scice-results.h5ad")
    first.write_bytes(b"an earlier side file")
    code, err = _run_error(capsys, ["run", str(data_file), "--targets", "4", *FAST])
    assert code == 1
    _assert_one_line_error(err, "No space left on device", "saved to", "data.scice-results.1.h5ad")
    assert first.read_bytes() == b"an earlier side file"


@pytest.mark.parametrize("variant", ["tmpfs", "injected"])
def test_light_output_onto_a_full_disk_is_one_line_before_any_work(
    variant, data_file, small_disk, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(AssertionError("must fail before fitting")))
    if variant == "tmpfs":
        folder = small_disk(64)
        expected = "not enough free space"
    else:
        folder = tmp_path / "light"
        folder.mkdir()
        monkeypatch.setattr(ad.AnnData, "write_h5ad", _enospc)
        expected = "No space left on device"
    before = _sha256(data_file)
    code, err = _run_error(
        capsys, ["run", str(data_file), "--targets", "4", "--light-output", str(folder / "l.h5ad"), *FAST]
    )
    assert code == 1
    _assert_one_line_error(err, expected, "l.h5ad")
    assert _sha256(data_file) == before
    assert list(folder.iterdir()) == []  # nothing half-written
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_light_output_gets_the_new_results_not_stale_ones(ran_file, tmp_path, monkeypatch, capsys):
    path = _copy(ran_file, tmp_path / "work")
    light = tmp_path / "kept.light.h5ad"
    argv = ["run", str(path), "--targets", "3", "--light-output", str(light), *FAST]
    assert main(argv) == 0
    new = ad.read_h5ad(path).uns["scICE"]
    assert deep_equal(dict(ad.read_h5ad(light).uns["scICE"]), dict(new))
    assert not deep_equal(dict(new), dict(ad.read_h5ad(ran_file).uns["scICE"]))
    # a failed run leaves a light copy without the stale entry, never with it
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(RuntimeError("injected")))
    with pytest.raises(RuntimeError, match="injected"):
        main(argv)
    assert "scICE" not in ad.read_h5ad(light).uns


@pytest.mark.parametrize("seed", ["-1", "99999999999"])
def test_bad_seed_is_one_line_before_any_work(seed, data_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(AssertionError("must fail before fitting")))
    light = tmp_path / "l.h5ad"
    argv = ["run", str(data_file), "--targets", "4", "--light-output", str(light), "--n-trials", "4", "--seed", seed]
    code, err = _run_error(capsys, argv)
    assert code == 2
    _assert_one_line_error(err, f"--seed must be an integer from 0 to {2**32 - 1}", seed)
    assert not light.exists()
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_output_writes_a_small_results_file_and_apply_writes_it_back(source_file, direct_results, tmp_path, capsys):
    data = _copy(source_file, tmp_path / "work")
    data.chmod(0o444)  # with --output, INPUT is only read
    out = tmp_path / "res.h5ad"
    before = _sha256(data)
    try:
        assert main(["run", str(data), "--targets", "4", "--output", str(out), *FAST]) == 0
    finally:
        data.chmod(0o644)
    assert _sha256(data) == before
    assert sorted(p.name for p in data.parent.iterdir()) == [data.name]
    small = ad.read_h5ad(out)
    assert small.n_obs == N_CELLS and small.n_vars == 0 and list(small.uns) == ["scICE"]
    assert small.obs_names.tolist() == [f"cell{i}" for i in range(N_CELLS)]
    assert out.stat().st_size < data.stat().st_size / 2
    _same_results(_stored(out), direct_results)
    assert main(["plot", str(out), "--out", str(tmp_path / "ic.png")]) == 0
    assert main(["apply", str(out), str(data), "--key-added", "from_file", "-q"]) == 0
    assert deep_equal(dict(ad.read_h5ad(data).uns["from_file"]), dict(small.uns["scICE"]))


def test_apply_refuses_results_of_other_cells(ran_file, tmp_path, capsys):
    other = _make_adata()
    other.obs_names = [f"other{i}" for i in range(other.n_obs)]
    target = tmp_path / "other.h5ad"
    other.write_h5ad(target)
    before = _sha256(target)
    code, err = _run_error(capsys, ["apply", str(ran_file), str(target)])
    assert code == 1
    _assert_one_line_error(err, "not for these cells", "other0")
    assert _sha256(target) == before


def test_reruns_do_not_grow_the_file(data_file):
    argv = ["run", str(data_file), "--targets", "4", *FAST]
    sizes = []
    for _ in range(3):
        assert main(argv) == 0
        sizes.append(data_file.stat().st_size)
    assert abs(sizes[2] - sizes[0]) <= 0.01 * sizes[0], sizes
    orig = ad.read_h5ad(data_file)
    assert {"note", "neighbors", "blob_colors", "scICE"} <= set(orig.uns)
    source = _make_adata()
    _assert_same_matrix(orig.X, source.X)
    _assert_same_matrix(orig.layers["dense"], source.layers["dense"])
    pd.testing.assert_frame_equal(orig.obs, source.obs)
    with h5py.File(data_file, "r") as f:
        assert f.attrs["encoding-type"] == "anndata" and f["uns"].attrs["encoding-type"] == "dict"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_killed_run_are_removed_and_live_ones_named(data_file, capsys):
    host = _atomic._owner().rsplit("-", 1)[0]
    dead = data_file.with_name(f".data.h5ad.uns.{host}-{_dead_pid()}.abc123{_atomic.TMP_MARKER}")
    live = data_file.with_name(f".data.h5ad.light.{host}-{os.getppid()}.def456{_atomic.TMP_MARKER}")
    elsewhere = data_file.with_name(f".data.h5ad.uns.otherhost-1.ghi789{_atomic.TMP_MARKER}")
    unrelated = data_file.with_name(f".other.h5ad.uns.{host}-{_dead_pid()}.jkl012{_atomic.TMP_MARKER}")
    for path in (dead, live, elsewhere, unrelated):
        path.write_bytes(b"left behind")
    assert main(["run", str(data_file), "--targets", "4", *FAST]) == 0
    err = capsys.readouterr().err
    assert not dead.exists() and f"removed '{dead}'" in err
    for kept in (live, elsewhere):
        assert kept.exists() and f"'{kept}' is a temporary file of another scice run" in err
    assert unrelated.exists() and str(unrelated) not in err


@pytest.mark.parametrize("variant", ["read-only folder", "tmpfs", "injected"])
def test_plot_write_failures_are_one_line_and_leave_no_file(
    variant, ran_file, small_disk, tmp_path, monkeypatch, capsys
):
    if variant == "tmpfs":
        folder = small_disk(16)
    else:
        folder = tmp_path / "plots"
        folder.mkdir()
    if variant == "read-only folder":
        folder.chmod(0o555)
    if variant == "injected":
        monkeypatch.setattr(Path, "write_bytes", _enospc)
    try:
        code, err = _run_error(capsys, ["plot", str(ran_file), "--out", str(folder / "ic.png")])
        listing = list(folder.iterdir())
    finally:
        folder.chmod(0o755)
    assert code == 1
    expected = {"read-only folder": "read-only", "tmpfs": "not enough free space", "injected": "No space left"}
    _assert_one_line_error(err, expected[variant], "ic.png")
    assert listing == []


# ----------------------------------------------------------------------------
# progress and checkpoints
# ----------------------------------------------------------------------------
def _recording_bar(monkeypatch) -> list:
    """Make the fit's bar show (as in a terminal) into a buffer; return the bars made."""
    import io

    from tqdm.auto import tqdm

    bars: list = []

    def make():
        bars.append(tqdm(total=0, desc="scice", unit="call", file=io.StringIO(), disable=False, mininterval=0))
        return bars[-1]

    monkeypatch.setattr(_fit, "_make_bar", make)
    return bars


@pytest.mark.parametrize("mode", [{"cluster_range": (2, 5)}, {"resolution": [0.001, 0.01]}])
def test_one_bar_counts_every_leiden_call(mode, monkeypatch):
    """One bar for the whole fit, the search included; its count is timings['n_leiden_calls']."""
    import logging

    from tqdm.contrib.logging import _TqdmLoggingHandler

    bars = _recording_bar(monkeypatch)
    routed: list[bool] = []
    real_finished = _fit._Progress.finished

    def finished(self, result):
        log = logging.getLogger("scice")
        routed.append(any(isinstance(h, _TqdmLoggingHandler) for h in log.handlers + logging.getLogger().handlers))
        return real_finished(self, result)

    monkeypatch.setattr(_fit._Progress, "finished", finished)
    # a plain script: no logging configured, so scice prints its lines to stderr (pytest's handlers removed)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    graph = blob_graph(n_blobs=4, size=40, k=8, seed=1, bridge=2)
    est = scice.SCICE(**mode, n_trials=4, n_bootstrap=5, random_state=0, verbose=True).fit(graph)
    assert len(bars) == 1
    calls = est.results_.timings["n_leiden_calls"]
    assert calls > 0 and bars[0].n == calls and bars[0].total == calls
    assert routed and all(routed)  # log lines of finished tasks go through the bar
    # quiet: no bar at all
    bars.clear()
    scice.SCICE(**mode, n_trials=4, n_bootstrap=5, random_state=0, verbose=False).fit(graph)
    assert bars == []


def test_bar_total_grows_as_work_is_planned(monkeypatch):
    bars = _recording_bar(monkeypatch)
    planned: list[int] = []
    real_plan = _fit._Progress.plan

    def plan(self, n):
        planned.append(n)
        real_plan(self, n)

    monkeypatch.setattr(_fit._Progress, "plan", plan)
    graph = blob_graph(n_blobs=4, size=40, k=8, seed=1, bridge=2)
    est = scice.SCICE(cluster_range=(2, 5), n_trials=4, n_bootstrap=5, random_state=0, verbose=True).fit(graph)
    timings = est.results_.timings
    n_probes, n_tasks = timings["n_probes"], len(est.results_.target_diagnostics)
    # each batch of search probes first (10 trials per probe), then the grids of all targets at once
    grids = planned.index(11 * 4 * n_tasks)
    assert grids > 0 and all(n > 0 and n % 10 == 0 for n in planned[:grids])
    assert sum(planned[:grids]) == 10 * n_probes
    assert bars[0].total == bars[0].n == timings["n_leiden_calls"]


def test_run_quiet_prints_no_bar_and_no_log_line(data_file, capsys):
    assert main(["run", str(data_file), "--targets", "4", "--n-trials", "10", "--n-bootstrap", "10", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "n_cluster" in captured.out


def test_checkpoint_resumes_an_interrupted_run(source_file, tmp_path, monkeypatch, capsys):
    argv_tail = ["--targets", "2", "3", "4", *FAST]
    plain = _copy(source_file, tmp_path / "plain")
    assert main(["run", str(plain), *argv_tail]) == 0
    data = _copy(source_file, tmp_path / "work")
    ckpt = tmp_path / "ckpt"
    before = _sha256(data)
    real_finished = _fit._Progress.finished

    def stop_after_first(self, result):
        real_finished(self, result)  # saved to the checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(_fit._Progress, "finished", stop_after_first)
    assert main(["run", str(data), *argv_tail, "--checkpoint", str(ckpt)]) == 130
    assert _sha256(data) == before
    assert len(list(ckpt.glob("task_*.pkl"))) == 1 and (ckpt / "search.pkl").exists()
    monkeypatch.setattr(_fit._Progress, "finished", real_finished)
    assert main(["run", str(data), *argv_tail, "--checkpoint", str(ckpt)]) == 0
    _same_results(_stored(data), _stored(plain))
    resumed = ad.read_h5ad(data).uns["scICE"]["timings"]
    full = ad.read_h5ad(plain).uns["scICE"]["timings"]
    assert int(resumed["n_tasks_resumed"]) == 1 and int(resumed["search_resumed"]) == 1
    assert int(resumed["n_leiden_calls"]) < int(full["n_leiden_calls"])


# ----------------------------------------------------------------------------
# --dry-run and the memory guard in command-line words
# ----------------------------------------------------------------------------
def test_dry_run_prints_the_estimate_and_writes_nothing(data_file, monkeypatch, capsys):
    monkeypatch.setattr(scice.SCICE, "fit", _fail_fit(AssertionError("a dry run must not fit")))
    before = _sha256(data_file)
    assert main(["run", str(data_file), "--cluster-range", "2", "4", *FAST, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"scice cost estimate: {N_CELLS} cells"), out
    assert "Leiden calls: about" in out and "wall time: about" in out and "memory: about" in out
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_dry_run_says_when_the_run_would_be_refused(data_file, capsys):
    before = _sha256(data_file)
    code, err = _run_error(
        capsys, ["run", str(data_file), "--targets", "4", *FAST, "--n-workers", "100000", "--dry-run"]
    )
    assert code == 1
    _assert_one_line_error(err, "would be refused", "--n-workers")
    assert "--n-workers 100000 is more than the" in err  # the cores warning, in option words
    assert "n_jobs" not in err
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_memory_refusal_is_one_line_in_option_words(data_file, capsys):
    """The fit's memory guard refuses before any worker starts; the CLI says so in one line."""
    before = _sha256(data_file)
    code, err = _run_error(capsys, ["run", str(data_file), "--targets", "4", *FAST, "--n-workers", "100000"])
    assert code == 1
    _assert_one_line_error(err, "needs about", "Lower --n-workers", "nothing was written")
    assert "check_memory" not in err and "n_jobs" not in err
    assert _sha256(data_file) == before
    assert sorted(p.name for p in data_file.parent.iterdir()) == [data_file.name]


def test_estimator_messages_in_option_words():
    from scice.cli._options import in_option_words

    assert in_option_words("Use n_jobs=2 or n_jobs=-1.") == "Use --n-workers 2 or --n-workers -1."
    assert (
        in_option_words("n_trials=5 gives a coarse IC (n_trials >= 10).")
        == "--n-trials 5 gives a coarse IC (--n-trials >= 10)."
    )
    assert in_option_words(
        "Lower n_jobs, n_trials or optimizer__n_steps, or free memory; check_memory=False skips this check."
    ) == ("Lower --n-workers, --n-trials, or free memory.")
    assert in_option_words("random_state=3 and min_cluster_size") == "--seed 3 and --min-cluster-size"
