"""File operations on (possibly very large) ``.h5ad`` files for the ``scice`` command.

Three operations, each written so that the expression matrix ``X`` (and the
layers, which are usually as large) of the input file is never loaded:

* :func:`make_light` writes a *light* copy of an ``.h5ad`` file: ``obs``, ``obsm``,
  ``obsp``, ``uns`` and only the first ``n_vars`` variables of ``X`` with their
  ``var`` rows. ``layers``, ``varm``, ``varp`` and ``raw`` are dropped.
* :func:`read_uns_entry` reads one ``uns`` entry (e.g. the scICE results).
* :func:`write_uns_entry` replaces one ``uns`` entry of a file *atomically*: the
  file is copied byte for byte to a temporary file in the same folder, the entry
  is written into the copy with h5py, and the copy replaces the original with
  :func:`os.replace`. Whatever happens before the replace (an exception, Ctrl-C),
  the original is left byte-identical and the temporary file is removed.

Outputs are written *through* symbolic links: when the path given is a symlink,
the file it points to (:func:`os.path.realpath`) is replaced, its temporary file is
made in that file's folder, and the link itself is left as it is.

Why not ``anndata.read_h5ad(path, backed="r")``? In backed mode anndata keeps only
``X`` on disk: ``layers``, ``obsm``, ``obsp``, ``varm``, ``varp`` and ``uns`` are all
read into memory when the file is opened (anndata 0.12,
``anndata._io.h5ad.read_h5ad_backed``), and slicing the columns of a backed CSR
``X`` (``adata[:, :n]``) reads the whole matrix into memory before subsetting. So
this module opens the file with h5py and reads only the elements it needs with
anndata's element reader (``anndata.io.read_elem``), and reads the first columns of
``X`` itself, in bounded blocks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._atomic import (
    _check_unchanged,
    atomic_output,
    check_writable,
    remove_if_exists,
    temp_path_next_to,
)
from ._xhead import DEFAULT_MAX_BLOCK_NNZ, _x_encoding, read_x_head
from .exceptions import InputFileError

__all__ = [
    "InputFileError",
    "H5ADInfo",
    "inspect_h5ad",
    "read_x_head",
    "make_light",
    "read_uns_entry",
    "write_uns_entry",
    "atomic_output",
    "check_writable",
    "temp_path_next_to",
    "remove_if_exists",
    "DEFAULT_MAX_BLOCK_NNZ",
]


def _io() -> tuple[Any, Any]:
    """``(read_elem, write_elem)`` for anndata >= 0.11 (``anndata.io``) and 0.10 (``experimental``)."""
    try:
        from anndata.io import read_elem, write_elem
    except ImportError:  # pragma: no cover - anndata 0.10
        from anndata.experimental import read_elem, write_elem
    return read_elem, write_elem


@contextlib.contextmanager
def _nullable_strings_writable() -> Iterator[None]:
    """Let anndata 0.11/0.12 write pandas' nullable string arrays.

    A file written by anndata 0.13 with pandas 3 stores string columns and the
    index as ``nullable-string-array``; anndata 0.12 reads them as
    ``pd.arrays.StringArray`` but refuses to write them back unless
    ``settings.allow_write_nullable_strings`` is on. anndata 0.13 writes them by
    default (the setting is ``None`` there), so nothing changes on that line.
    """
    import anndata as ad

    if getattr(ad.settings, "allow_write_nullable_strings", None) is False:
        with ad.settings.override(allow_write_nullable_strings=True):
            yield
    else:
        yield


# ----------------------------------------------------------------------------
# opening and inspecting
# ----------------------------------------------------------------------------
def _check_readable(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{str(path)!r} does not exist.")
    if path.is_dir():
        raise InputFileError(f"{str(path)!r} is a directory, not an .h5ad file.")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{str(path)!r} is not readable (permission denied).")
    return path


@contextlib.contextmanager
def open_h5ad(path: str | os.PathLike, mode: str = "r") -> Iterator[Any]:
    """Open an ``.h5ad`` file with h5py after checking that it is one.

    Parameters
    ----------
    path
        File to open.
    mode
        h5py mode, ``"r"`` or ``"r+"``.

    Yields
    ------
    h5py.File

    Raises
    ------
    InputFileError
        The file does not exist, is not an HDF5 file, or is not an AnnData file
        (no ``obs`` / ``var`` groups), or was written by anndata < 0.7.
    """
    import h5py

    path = _check_readable(path)
    if not h5py.is_hdf5(path):
        raise InputFileError(f"{str(path)!r} is not an .h5ad file (not an HDF5 file).")
    try:
        f = h5py.File(path, mode)
    except OSError as err:  # locked, truncated, ...
        raise InputFileError(f"cannot open {str(path)!r}: {err}") from err
    try:
        for name in ("obs", "var"):
            if name not in f:
                raise InputFileError(f"{str(path)!r} is an HDF5 file but not an .h5ad file (no {name!r} group).")
            if not isinstance(f[name], h5py.Group):
                raise InputFileError(
                    f"{str(path)!r} was written by anndata < 0.7 (old {name!r} format); "
                    "re-save it with a current anndata (anndata.read_h5ad(path).write_h5ad(path))."
                )
        yield f
    finally:
        f.close()


def _frame_length(group: Any) -> int:
    """Number of rows of an anndata dataframe group.

    The index is a plain dataset in files of anndata <= 0.12 (and of 0.13 with
    pandas 2), and a ``nullable-string-array`` group (``values`` + ``mask``) in
    files of anndata 0.13 with pandas 3. A dataset's length is read from its
    shape; any other encoding is read with anndata's own element reader.
    """
    import h5py

    index_name = group.attrs.get("_index", "_index")
    if isinstance(index_name, bytes):
        index_name = index_name.decode()
    if index_name not in group:
        raise InputFileError(f"cannot find the index of {group.name!r}; the file is not a valid .h5ad file.")
    index = group[index_name]
    if isinstance(index, h5py.Dataset):
        return int(index.shape[0])
    read_elem, _ = _io()
    return len(read_elem(index))


@dataclass(frozen=True)
class H5ADInfo:
    """What is in an ``.h5ad`` file, read without loading any matrix.

    Attributes
    ----------
    n_obs, n_vars
        Number of cells and of variables.
    obsp_keys, uns_keys, layers_keys, obsm_keys
        Keys of those groups (empty when the group is absent).
    x_encoding
        ``"array"``, ``"csr_matrix"``, ``"csc_matrix"``, ``"none"`` or the unknown encoding.
    """

    n_obs: int
    n_vars: int
    obsp_keys: tuple[str, ...]
    uns_keys: tuple[str, ...]
    layers_keys: tuple[str, ...]
    obsm_keys: tuple[str, ...]
    x_encoding: str


def inspect_h5ad(path: str | os.PathLike) -> H5ADInfo:
    """Shape and group keys of an ``.h5ad`` file (reads only metadata).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    H5ADInfo
    """

    def keys(f: Any, name: str) -> tuple[str, ...]:
        return tuple(f[name].keys()) if name in f else ()

    with open_h5ad(path) as f:
        return H5ADInfo(
            n_obs=_frame_length(f["obs"]),
            n_vars=_frame_length(f["var"]),
            obsp_keys=keys(f, "obsp"),
            uns_keys=keys(f, "uns"),
            layers_keys=keys(f, "layers"),
            obsm_keys=keys(f, "obsm"),
            x_encoding=_x_encoding(f),
        )


# ----------------------------------------------------------------------------
# the light file
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LightInfo:
    """What :func:`make_light` wrote.

    Attributes
    ----------
    n_obs, n_vars_total, n_vars_kept
        Cells, variables of the input, variables kept.
    dropped
        Elements of the input that are not in the light file (``layers``, ...).
    """

    n_obs: int
    n_vars_total: int
    n_vars_kept: int
    dropped: tuple[str, ...]


def make_light(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    n_vars: int = 1,
    *,
    max_block_nnz: int = DEFAULT_MAX_BLOCK_NNZ,
) -> LightInfo:
    """Write a light copy of an ``.h5ad`` file for clustering.

    The copy keeps ``obs``, ``obsm``, ``obsp`` and ``uns`` whole and only the first
    ``n_vars`` variables of ``X`` with their ``var`` rows; ``layers``, ``varm``,
    ``varp`` and ``raw`` are dropped. The input's ``X`` and ``layers`` are never
    loaded (see :func:`read_x_head`); only the kept elements are read, element by
    element, with ``anndata.io.read_elem`` (``var`` is read whole, then cut: it is
    per-gene metadata, small next to ``X``). The output is written atomically.

    Parameters
    ----------
    input_path
        The (large) ``.h5ad`` file.
    output_path
        Where to write the light file; must not be the input.
    n_vars
        Number of leading variables to keep (at least 1; capped at the input's).
    max_block_nnz
        Largest number of stored entries of a CSR ``X`` read at once.

    Returns
    -------
    LightInfo

    Raises
    ------
    InputFileError
        Unreadable or invalid input, output equal to the input, unwritable output.
    """
    import anndata as ad

    read_elem, _ = _io()
    if int(n_vars) < 1:
        raise InputFileError(f"n_vars must be >= 1, got {n_vars}.")
    input_path, output_path = Path(input_path), Path(output_path)
    _check_readable(input_path)
    if output_path.exists() and os.path.samefile(input_path, output_path):
        raise InputFileError(f"the light output {str(output_path)!r} is the input file; choose another path.")
    with open_h5ad(input_path) as f:
        n_obs, n_total = _frame_length(f["obs"]), _frame_length(f["var"])
        keep = min(int(n_vars), n_total)
        obs = read_elem(f["obs"])
        var = read_elem(f["var"]).iloc[:keep].copy()
        parts = {name: read_elem(f[name]) for name in ("obsm", "obsp", "uns") if name in f}
        X = read_x_head(f, keep, max_block_nnz=max_block_nnz)
        dropped = tuple(name for name in ("layers", "varm", "varp", "raw") if name in f and len(f[name]) > 0)
    light = ad.AnnData(X=X, obs=obs, var=var, **parts)
    with atomic_output(output_path, "light") as tmp, _nullable_strings_writable():
        light.write_h5ad(tmp)
    return LightInfo(n_obs=n_obs, n_vars_total=n_total, n_vars_kept=keep, dropped=dropped)


# ----------------------------------------------------------------------------
# uns entries
# ----------------------------------------------------------------------------
def read_uns_entry(path: str | os.PathLike, key: str) -> Any:
    """Read ``uns[key]`` of an ``.h5ad`` file without reading anything else.

    Parameters
    ----------
    path
        The file.
    key
        Key in ``uns``.

    Returns
    -------
    object
        The decoded element (a dict for the scICE results).

    Raises
    ------
    InputFileError
        Invalid file, or ``key`` not in ``uns`` (the message lists the keys).
    """
    read_elem, _ = _io()
    with open_h5ad(path) as f:
        keys = list(f["uns"].keys()) if "uns" in f else []
        if key not in keys:
            available = ", ".join(repr(k) for k in keys) if keys else "none"
            raise InputFileError(
                f"no {key!r} entry in uns of {str(path)!r} (available uns keys: {available}); "
                "run `scice run` on the file first, or pass --key."
            )
        return read_elem(f["uns"][key])


def write_uns_entry(
    path: str | os.PathLike, key: str, value: Any, *, expect_stat: os.stat_result | None = None
) -> None:
    """Replace ``uns[key]`` of an ``.h5ad`` file atomically, leaving the rest untouched.

    The file is copied byte for byte (:func:`shutil.copyfile` streams it, nothing
    is decoded) to a hidden temporary file in the same folder (for a symlink
    ``path``: in the folder of the file it points to, which is the file replaced;
    the link is kept, see :func:`atomic_output`); the copy is opened
    with h5py in ``r+`` mode, ``uns/<key>`` is deleted if present and ``value`` is
    written with ``anndata.io.write_elem``; then the copy replaces ``path``
    (:func:`os.replace`). On any error or interrupt before that, ``path`` is
    byte-identical to before and the temporary file is removed.

    HDF5 does not reclaim the space of a deleted element, so a file whose entry is
    replaced many times grows by the size of the old entry each time
    (``h5repack`` compacts it).

    Parameters
    ----------
    path
        The ``.h5ad`` file to update.
    key
        Key in ``uns``.
    value
        Anything anndata can write (a str-keyed nested dict of arrays, scalars and
        DataFrames).
    expect_stat
        ``os.stat`` of ``path`` taken earlier; if the file's size or modification
        time changed since, nothing is written (another process wrote it).

    Raises
    ------
    InputFileError
        Invalid file, or the file changed since ``expect_stat`` was taken.
    """
    import h5py

    _, write_elem = _io()
    path = Path(path)
    with open_h5ad(path):
        pass  # validate before copying gigabytes
    check_writable(path)
    with atomic_output(path, "uns") as tmp:
        _check_unchanged(path, expect_stat)
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            if "uns" not in f:
                write_elem(f, "uns", {})
            uns = f["uns"]
            if key in uns:
                del uns[key]
            write_elem(uns, key, value)
        _check_unchanged(path, expect_stat)
