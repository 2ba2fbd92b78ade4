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
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

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

#: Largest number of stored entries of a sparse ``X`` read at once (about 50 MB of
#: ``indices`` + ``data`` + row ids for float32 data and int32 indices).
DEFAULT_MAX_BLOCK_NNZ = 1 << 22

#: Name marker of every temporary file this module creates (hidden, same folder).
TMP_MARKER = ".scice-tmp"


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


def _x_encoding(f: Any) -> str:
    import h5py

    if "X" not in f:
        return "none"
    x = f["X"]
    if isinstance(x, h5py.Dataset):
        return "array"
    enc = x.attrs.get("encoding-type", x.attrs.get("h5sparse_format", ""))
    if isinstance(enc, bytes):
        enc = enc.decode()
    return {"csr": "csr_matrix", "csc": "csc_matrix"}.get(enc, enc or "unknown")


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
# the first columns of X
# ----------------------------------------------------------------------------
def _read_csr_head(group: Mapping[str, Any], n_obs: int, n_cols: int, max_block_nnz: int) -> sp.csr_matrix:
    """First ``n_cols`` columns of an on-disk CSR matrix, reading row blocks.

    Only ``indptr`` (``n_obs + 1`` integers) is read whole. ``indices`` and ``data``
    are read in contiguous slices of at most ``max_block_nnz`` entries (or one row,
    if a single row holds more); each slice is filtered to the wanted columns
    before the next is read, so peak memory is one block plus the result.
    """
    indptr = np.asarray(group["indptr"][:], dtype=np.int64)
    indices_ds, data_ds = group["indices"], group["data"]
    out_indices: list[np.ndarray] = []
    out_data: list[np.ndarray] = []
    counts = np.zeros(n_obs, dtype=np.int64)
    row = 0
    while row < n_obs:
        start = indptr[row]
        # last row whose end stays within the budget; at least one row per block
        stop_row = int(np.searchsorted(indptr, start + max_block_nnz, side="right")) - 1
        stop_row = min(max(stop_row, row + 1), n_obs)
        stop = indptr[stop_row]
        if stop > start:
            idx = np.asarray(indices_ds[start:stop])
            keep = idx < n_cols
            if keep.any():
                dat = np.asarray(data_ds[start:stop])[keep]
                rows = np.repeat(np.arange(row, stop_row), np.diff(indptr[row : stop_row + 1]))[keep]
                counts += np.bincount(rows, minlength=n_obs)
                out_indices.append(idx[keep])
                out_data.append(dat)
        row = stop_row
    new_indptr = np.zeros(n_obs + 1, dtype=np.int64)
    np.cumsum(counts, out=new_indptr[1:])
    dtype = data_ds.dtype
    data = np.concatenate(out_data) if out_data else np.zeros(0, dtype=dtype)
    indices = np.concatenate(out_indices) if out_indices else np.zeros(0, dtype=np.int32)
    return sp.csr_matrix((data, indices, new_indptr), shape=(n_obs, n_cols))


def _read_csc_head(group: Mapping[str, Any], n_obs: int, n_cols: int) -> sp.csc_matrix:
    """First ``n_cols`` columns of an on-disk CSC matrix: one contiguous slice."""
    indptr = np.asarray(group["indptr"][: n_cols + 1], dtype=np.int64)
    start, stop = int(indptr[0]), int(indptr[-1])
    indices = np.asarray(group["indices"][start:stop])
    data = np.asarray(group["data"][start:stop])
    return sp.csc_matrix((data, indices, indptr - start), shape=(n_obs, n_cols))


def read_x_head(f: Any, n_cols: int, *, max_block_nnz: int = DEFAULT_MAX_BLOCK_NNZ) -> Any:
    """Read the first ``n_cols`` columns of ``X`` of an open ``.h5ad`` file.

    The full matrix is never read:

    * dense ``X`` (an HDF5 dataset): one hyperslab selection ``X[:, :n_cols]``;
      HDF5 reads only the storage chunks that intersect it, through its chunk cache.
    * CSC ``X``: ``indptr[:n_cols + 1]`` gives the contiguous range of stored
      entries of those columns; only that range is read.
    * CSR ``X``: columns are scattered over all rows, so ``indices``/``data`` are
      streamed in row blocks of at most ``max_block_nnz`` entries and filtered.

    Parameters
    ----------
    f
        An open ``h5py.File`` of an ``.h5ad`` file.
    n_cols
        Number of leading columns (variables) to read.
    max_block_nnz
        Largest number of stored entries of a CSR matrix read at once.

    Returns
    -------
    numpy.ndarray, scipy.sparse.csr_matrix, scipy.sparse.csc_matrix or None
        ``None`` when the file has no ``X``. Sparse input keeps its format.
    """
    encoding = _x_encoding(f)
    if encoding == "none":
        return None
    x = f["X"]
    if encoding == "array":
        if x.ndim != 2:
            raise InputFileError(f"X has {x.ndim} dimensions; an .h5ad X must be a 2-D matrix.")
        return np.asarray(x[:, :n_cols])
    shape_attr = x.attrs.get("shape", x.attrs.get("h5sparse_shape"))
    if shape_attr is None:
        raise InputFileError("the sparse X of the file has no 'shape' attribute; the file is not a valid .h5ad file.")
    n_obs = int(shape_attr[0])
    if encoding == "csr_matrix":
        return _read_csr_head(x, n_obs, n_cols, max_block_nnz)
    if encoding == "csc_matrix":
        return _read_csc_head(x, n_obs, n_cols)
    raise InputFileError(
        f"X is stored with encoding {encoding!r}; only dense arrays and CSR/CSC sparse matrices are supported."
    )


# ----------------------------------------------------------------------------
# atomic outputs
# ----------------------------------------------------------------------------
def temp_path_next_to(target: str | os.PathLike, tag: str) -> Path:
    """Create a new, empty, hidden temporary file in the folder of ``target``.

    Parameters
    ----------
    target
        The file the temporary file belongs to.
    tag
        Part of the name, for humans (``.data.h5ad.<tag>.XXXX.scice-tmp``).

    Returns
    -------
    pathlib.Path
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.{tag}.", suffix=TMP_MARKER, dir=target.parent)
    os.close(fd)
    return Path(name)


def remove_if_exists(path: Path | None) -> None:
    """Delete ``path`` if it is a file that exists; ``None`` is ignored."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, tag: str = "write") -> Iterator[Path]:
    """Write a file through a temporary file in the same folder.

    Yields the temporary path; when the block exits normally the temporary file
    replaces ``target`` with :func:`os.replace` (atomic on POSIX and Windows within
    one file system). On any exception, including ``KeyboardInterrupt``, the
    temporary file is removed and ``target`` is untouched.

    A symlink ``target`` is written through: the file it points to
    (:func:`os.path.realpath`) is replaced, the temporary file is made in *that*
    file's folder (so the rename stays within one file system) and the link is
    kept. Replacing the link path itself would turn the link into a regular file
    and leave the real file without the update.

    Parameters
    ----------
    target
        Final path (a symlink is followed).
    tag
        Part of the temporary file name, for humans.

    Yields
    ------
    pathlib.Path
        Where to write.
    """
    shown = str(target)
    target = Path(os.path.realpath(target))
    if target.is_dir():
        raise InputFileError(f"{shown!r} is a folder; give the path of a file to write.")
    if not target.parent.is_dir():
        raise InputFileError(f"the folder of {shown!r} does not exist.")
    if not os.access(target.parent, os.W_OK):
        raise InputFileError(f"cannot write to the folder of {shown!r} (permission denied).")
    tmp = temp_path_next_to(target, tag)
    try:
        yield tmp
        if target.exists():
            shutil.copymode(target, tmp)  # keep the permissions of the file we replace
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        tmp = None
    finally:
        remove_if_exists(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`InputFileError` unless ``path`` can be replaced in place.

    The file itself must be writable (a read-only file is never replaced, even
    though :func:`os.replace` could) and so must its folder (for the temporary copy).
    For a symlink, that is the folder of the file it points to.
    """
    path = Path(path)
    if not os.access(path, os.W_OK):
        raise InputFileError(f"{str(path)!r} is not writable (permission denied); the results could not be saved.")
    folder = Path(os.path.realpath(path)).parent
    if not os.access(folder, os.W_OK):
        raise InputFileError(
            f"cannot write to the folder {str(folder)!r} of {str(path)!r} (permission denied); the results "
            "are written through a temporary copy in that folder."
        )


def _check_unchanged(path: Path, expect: os.stat_result | None) -> None:
    if expect is None:
        return
    now = os.stat(path)
    if (now.st_size, now.st_mtime_ns) != (expect.st_size, expect.st_mtime_ns):
        raise InputFileError(
            f"{str(path)!r} was modified by another process during the run; the results were not written "
            "to it so that its changes are not lost. Run again."
        )
