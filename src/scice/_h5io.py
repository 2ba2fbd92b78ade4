"""File operations on (possibly very large) ``.h5ad`` files for the ``scice`` command.

Three operations, each written so that the expression matrix ``X`` (and the
layers, which are usually as large) of the input file is never loaded:

* :func:`make_light` writes a *light* copy of an ``.h5ad`` file: ``obs``, ``obsm``,
  ``obsp``, ``uns`` and only the first ``n_vars`` variables of ``X`` with their
  ``var`` rows. ``layers``, ``varm``, ``varp`` and ``raw`` are dropped.
* :func:`read_uns_entry` reads one ``uns`` entry (e.g. the scICE results).
* :func:`write_uns_entry` replaces one ``uns`` entry of a file *atomically*: every
  other object of the file is copied with h5py into a temporary file in the same
  folder, the new entry is written into it, and it replaces the original with
  :func:`os.replace`. Whatever happens before the replace (an exception, Ctrl-C,
  a full disk), the original is left byte-identical and the temporary file is
  removed. Since the old entry is not copied, the file does not grow from run
  to run.
* :func:`write_results_file` writes a small ``.h5ad`` file holding one ``uns``
  entry and the cell names, and :func:`read_obs_names` reads the cell names of a
  file; ``scice apply`` uses both.

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

import numpy as np

from ._atomic import (
    _check_unchanged,
    atomic_output,
    check_writable,
    clean_leftovers,
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
    "read_obs_names",
    "read_uns_entry",
    "write_results_file",
    "write_uns_entry",
    "estimate_size",
    "clean_leftovers",
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
    drop_uns: tuple[str, ...] = (),
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
    drop_uns
        ``uns`` entries not to copy (``scice run`` drops the entry it is about
        to recompute, so the light copy never carries stale results).

    Returns
    -------
    LightInfo

    Raises
    ------
    InputFileError
        Unreadable or invalid input, output equal to the input, unwritable
        output, not enough free space for it (checked before writing), or a
        failed write (nothing is left behind).
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
        parts = {name: read_elem(f[name]) for name in ("obsm", "obsp") if name in f}
        if "uns" in f:
            parts["uns"] = {k: read_elem(v) for k, v in f["uns"].items() if k not in drop_uns}
        X = read_x_head(f, keep, max_block_nnz=max_block_nnz)
        dropped = tuple(name for name in ("layers", "varm", "varp", "raw") if name in f and len(f[name]) > 0)
    light = ad.AnnData(X=X, obs=obs, var=var, **parts)
    size = estimate_size([X, obs, var, *parts.values()])
    with atomic_output(output_path, "light", size=size) as tmp, _nullable_strings_writable():
        light.write_h5ad(tmp)
    return LightInfo(n_obs=n_obs, n_vars_total=n_total, n_vars_kept=keep, dropped=dropped)


def read_graph(path: str | os.PathLike, key: str) -> Any:
    """Read the sparse matrix ``obsp[key]`` of an ``.h5ad`` file without reading anything else.

    The caller has checked that ``key`` is in ``obsp`` (:func:`inspect_h5ad`).
    """
    read_elem, _ = _io()
    with open_h5ad(path) as f:
        return read_elem(f["obsp"][key])


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


def estimate_size(value: Any) -> int:
    """An upper estimate of the bytes ``value`` takes in an HDF5 file (for free-space checks).

    Arrays count their ``nbytes``, sparse matrices their three arrays, data
    frames their deep memory use (strings as Python objects, more than on
    disk), plus 4 KiB of HDF5 bookkeeping per element.
    """
    import pandas as pd
    import scipy.sparse as sp

    overhead = 4096
    if isinstance(value, dict):
        return overhead + sum(estimate_size(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(estimate_size(v) for v in value)
    if isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        usage = value.memory_usage(deep=True)
        n_columns = getattr(value, "shape", (0, 1))[1] if value.ndim == 2 else 1
        return overhead * (1 + n_columns) + int(np.sum(usage))
    if sp.issparse(value):
        m = value.tocsr() if not hasattr(value, "indptr") else value
        return overhead + int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return overhead + sum(len(str(x)) + 16 for x in value.ravel())
        return overhead + int(value.nbytes)
    if isinstance(value, (str, bytes)):
        return overhead + len(value)
    nbytes = getattr(value, "nbytes", None)  # anndata's own arrays
    return overhead + (int(nbytes) if isinstance(nbytes, (int, np.integer)) else 64)


def write_uns_entry(
    path: str | os.PathLike, key: str, value: Any, *, expect_stat: os.stat_result | None = None
) -> None:
    """Replace ``uns[key]`` of an ``.h5ad`` file atomically, leaving the rest untouched.

    A new file is built in a hidden temporary file in the same folder (for a
    symlink ``path``: in the folder of the file it points to, which is the file
    replaced; the link is kept, see :func:`atomic_output`): every object of the
    file except ``uns/<key>`` is copied into it with h5py (``Group.copy``: data,
    chunking, compression and attributes, anndata's encoding attributes
    included; nothing is decoded), ``value`` is written with
    ``anndata.io.write_elem``, and the new file replaces ``path``
    (:func:`os.replace`). On any error or interrupt before that, ``path`` is
    byte-identical to before and the temporary file is removed. As the old
    entry is not copied, replacing an entry many times does not grow the file
    (HDF5 does not reclaim the space of a deleted element in place).

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
        Invalid or read-only file, the file changed since ``expect_stat`` was
        taken, not enough free space next to it for the new file (the size of
        the file plus an estimate of ``value``), or a failed write.
    """
    import h5py

    _, write_elem = _io()
    path = Path(path)
    with open_h5ad(path) as f:
        userblock = f.userblock_size  # validate before copying gigabytes
    check_writable(path)
    size = os.path.getsize(path) + estimate_size(value)
    with atomic_output(path, "uns", size=size) as tmp:
        _check_unchanged(path, expect_stat)
        if userblock:  # not written by anndata: keep the bytes, as h5py cannot copy a user block
            shutil.copyfile(path, tmp)
            with h5py.File(tmp, "r+") as dst:
                if "uns" in dst and key in dst["uns"]:
                    del dst["uns"][key]
                _write_entry(dst, key, value, write_elem)
        else:
            with h5py.File(path, "r") as src, h5py.File(tmp, "w", track_order=_tracks_order(src)) as dst:
                _copy_except(src, dst, "uns", key)
                _write_entry(dst, key, value, write_elem)
        _check_unchanged(path, expect_stat)


def _write_entry(f: Any, key: str, value: Any, write_elem: Any) -> None:
    if "uns" not in f:
        write_elem(f, "uns", {})
    write_elem(f["uns"], key, value)


def _tracks_order(group: Any) -> bool:
    """Whether an HDF5 group keeps its members in creation order."""
    import h5py

    return bool(group.id.get_create_plist().get_link_creation_order() & h5py.h5p.CRT_ORDER_TRACKED)


def _copy_attrs(src: Any, dst: Any) -> None:
    """Copy the attributes of ``src`` to ``dst`` with their stored types and shapes."""
    for name in src.attrs:
        aid = src.attrs.get_id(name)
        dst.attrs.create(name, src.attrs[name], shape=aid.shape, dtype=aid.dtype)


def _copy_except(src: Any, dst: Any, group: str, skip: str) -> None:
    """Copy every object of the file ``src`` into ``dst`` except ``<group>/<skip>``."""
    _copy_attrs(src, dst)
    for name in src:
        if name != group:
            src.copy(src[name], dst, name=name)
            continue
        new = dst.create_group(name, track_order=_tracks_order(src[name]))
        _copy_attrs(src[name], new)
        for child in src[name]:
            if child != skip:
                src[name].copy(src[name][child], new, name=child)


def write_results_file(
    path: str | os.PathLike, key: str, value: Any, obs_names: Any, *, what: str = "the results"
) -> None:
    """Write a small ``.h5ad`` file holding ``uns[key]`` and the cell names, atomically.

    The file has no ``X`` and no variables: ``obs`` holds only the cell names
    (its index), so anndata reads it (``anndata.read_h5ad(path).uns[key]``)
    and ``scice plot`` and ``scice apply`` use it like a full file.

    Parameters
    ----------
    path
        Where to write it (replaced atomically if it exists).
    key
        Key in ``uns``.
    value
        The entry (e.g. :func:`scice.legacy.to_legacy_dict` of the results).
    obs_names
        The cell names, in order.
    what
        What is written, for the free-space message.

    Raises
    ------
    InputFileError
        Not enough free space, an unwritable folder, or a failed write.
    """
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame(index=pd.Index(np.asarray(obs_names, dtype=object).astype(str), name=None))
    adata = ad.AnnData(obs=obs, uns={key: value})
    size = estimate_size([value, obs])
    with atomic_output(path, "results", size=size) as tmp, _nullable_strings_writable():
        adata.write_h5ad(tmp)


def read_obs_names(path: str | os.PathLike) -> np.ndarray:
    """The cell names (the ``obs`` index) of an ``.h5ad`` file, reading nothing else.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    numpy.ndarray
        The names as an object array of str.
    """
    import h5py

    read_elem, _ = _io()
    with open_h5ad(path) as f:
        group = f["obs"]
        index_name = group.attrs.get("_index", "_index")
        if isinstance(index_name, bytes):
            index_name = index_name.decode()
        if index_name not in group:
            raise InputFileError(f"cannot find the cell names of {str(path)!r}; the file is not a valid .h5ad file.")
        element = group[index_name]
        values = element[()] if isinstance(element, h5py.Dataset) else read_elem(element)
    return np.asarray(
        [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values, dtype=object)], dtype=object
    )
