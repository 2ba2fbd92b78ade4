"""The first columns of an ``.h5ad`` file's ``X``, read in bounded blocks.

``X`` (dense, CSR or CSC) is never loaded whole: a dense ``X`` is sliced by
h5py, a CSC ``X`` reads only the kept columns, and a CSR ``X`` reads its
``indptr`` whole and ``indices``/``data`` in blocks of at most ``max_block_nnz``
entries (or one row).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from .exceptions import InputFileError

__all__ = ["DEFAULT_MAX_BLOCK_NNZ", "read_x_head"]

#: Largest number of stored entries of a sparse ``X`` read at once (about 50 MB of
#: ``indices`` + ``data`` + row ids for float32 data and int32 indices).
DEFAULT_MAX_BLOCK_NNZ = 1 << 22


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
