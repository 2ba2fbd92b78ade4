"""Atomic outputs: a file is replaced only by a complete new version, or not at all.

Outputs are written *through* symbolic links: when the path given is a symlink,
the file it points to (:func:`os.path.realpath`) is replaced, its temporary file is
made in that file's folder, and the link itself is left as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .exceptions import InputFileError

__all__ = ["TMP_MARKER", "atomic_output", "check_writable", "remove_if_exists", "temp_path_next_to"]

#: Name marker of every temporary file this package creates (hidden, same folder).
TMP_MARKER = ".scice-tmp"


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
