"""Atomic outputs: a file is replaced only by a complete new version, or not at all.

Outputs are written *through* symbolic links: when the path given is a symlink,
the file it points to (:func:`os.path.realpath`) is replaced, its temporary file is
made in that file's folder, and the link itself is left as it is.

Every temporary file is hidden, sits next to the file it becomes and is named
``.<name>.<tag>.<host>-<pid>.<random>.scice-tmp``: the host and process that
made it. A run killed with ``kill -9`` cannot remove its temporary files;
:func:`clean_leftovers` removes those of a process of this host that no longer
runs, and names (but keeps) those that may still be in use: made by a process
that runs, on another host (a shared folder), or without an owner in the name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .exceptions import InputFileError

__all__ = [
    "TMP_MARKER",
    "atomic_output",
    "check_folder_writable",
    "check_writable",
    "clean_leftovers",
    "ensure_free_space",
    "remove_if_exists",
    "temp_path_next_to",
]

#: Name marker of every temporary file this package creates (hidden, same folder).
TMP_MARKER = ".scice-tmp"

#: Room asked for beyond an output's estimated size (file-format overhead, metadata).
SPACE_MARGIN = 1 << 20


def _owner() -> str:
    """``<host>-<pid>`` of this process, with only name-safe characters in the host."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


_OWNER_RE = re.compile(r"\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[A-Za-z0-9_]+" + re.escape(TMP_MARKER) + "$")


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
        Part of the name, for humans (``.data.h5ad.<tag>.<host>-<pid>.XXXX.scice-tmp``).

    Returns
    -------
    pathlib.Path
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.{tag}.{_owner()}.", suffix=TMP_MARKER, dir=target.parent)
    os.close(fd)
    return Path(name)


def remove_if_exists(path: Path | None) -> None:
    """Delete ``path`` if it is a file that exists; ``None`` is ignored."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def ensure_free_space(folder: str | os.PathLike, size: int, what: str) -> None:
    """Raise :class:`InputFileError` unless ``folder`` has room for ``size`` bytes (plus a margin).

    Parameters
    ----------
    folder
        Where the file will be written.
    size
        Its estimated size in bytes.
    what
        What is about to be written, for the message (``"the light copy"``).
    """
    from ._memory import format_bytes

    needed = int(size) + SPACE_MARGIN
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise InputFileError(
            f"not enough free space in {str(folder)!r} for {what}: it needs about {format_bytes(needed)} "
            f"and {format_bytes(free)} are free; free some space or write elsewhere."
        )


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, tag: str = "write", size: int | None = None) -> Iterator[Path]:
    """Write a file through a temporary file in the same folder.

    Yields the temporary path; when the block exits normally the temporary file
    replaces ``target`` with :func:`os.replace` (atomic on POSIX and Windows within
    one file system). On any exception, including ``KeyboardInterrupt``, the
    temporary file is removed and ``target`` is untouched. An :class:`OSError`
    (disk full, permission denied, ...) becomes an :class:`InputFileError`
    naming the file.

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
    size
        Estimated size of the new file: checked against the free space of the
        folder before anything is written (see :func:`ensure_free_space`).

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
    check_folder_writable(target.parent, f"the folder of {shown!r}")
    if target.exists():
        check_writable(target)
    if size is not None:
        ensure_free_space(target.parent, size, repr(shown))
    tmp: Path | None = None
    try:
        tmp = temp_path_next_to(target, tag)
        yield tmp
        if target.exists():
            shutil.copymode(target, tmp)  # keep the permissions of the file we replace
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        tmp = None
    except OSError as err:
        raise InputFileError(f"writing {shown!r} failed: {_os_error_text(err)}") from err
    finally:
        remove_if_exists(tmp)


def _os_error_text(err: OSError) -> str:
    """``No space left on device`` (the system's words), else the error as printed."""
    if err.errno is not None and err.strerror:
        return err.strerror + (" (the disk is full)" if err.errno == errno.ENOSPC else "")
    return str(err) or type(err).__name__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _no_write_bit(path: Path) -> bool:
    """Whether the mode of ``path`` has no write bit at all (``chmod a-w``).

    :func:`os.access` says True for root whatever the mode; the mode bits are
    what a user sees with ``ls -l``, so a file nobody may write is refused for
    everyone.
    """
    return not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def check_folder_writable(folder: str | os.PathLike, shown: str) -> None:
    """Raise :class:`InputFileError` unless files can be created in ``folder`` (mode bits checked too)."""
    folder = Path(folder)
    if not os.access(folder, os.W_OK | os.X_OK) or _no_write_bit(folder):
        raise InputFileError(f"cannot write to {shown} (permission denied, or the folder is read-only).")


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`InputFileError` unless ``path`` can be replaced in place.

    The file itself must be writable (a read-only file is never replaced, even
    though :func:`os.replace` could, and even by root: a file whose mode has no
    write bit is refused) and so must its folder (for the temporary copy).
    For a symlink, that is the folder of the file it points to.
    """
    path = Path(path)
    if not os.access(path, os.W_OK) or _no_write_bit(path):
        raise InputFileError(
            f"{str(path)!r} is read-only (permission denied or no write bit in its mode); "
            "a read-only file is never replaced."
        )
    folder = Path(os.path.realpath(path)).parent
    if not os.access(folder, os.W_OK | os.X_OK) or _no_write_bit(folder):
        raise InputFileError(
            f"cannot write to the folder {str(folder)!r} of {str(path)!r} (permission denied, or the folder "
            "is read-only); the file is updated through a temporary copy in that folder."
        )


def _check_unchanged(path: Path, expect: os.stat_result | None) -> None:
    if expect is None:
        return
    now = os.stat(path)
    if (now.st_size, now.st_mtime_ns) != (expect.st_size, expect.st_mtime_ns):
        raise InputFileError(
            f"{str(path)!r} was modified by another process during the run; the results were not written "
            "to it so that its changes are not lost"
        )


# ----------------------------------------------------------------------------
# leftovers of a killed run
# ----------------------------------------------------------------------------
def _pid_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_leftovers(target: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """Remove the temporary files of ``target`` left by a killed run; return ``(removed, kept)``.

    A temporary file of ``target`` is a hidden file of its folder (the real
    file's folder, for a symlink) whose name starts with ``.<name>.`` (or
    ``..<name>.``: the temporary file of a temporary file) and ends with
    :data:`TMP_MARKER`. It is removed when the host and process in its name
    are this host and a process that no longer runs; otherwise it is kept
    (another run may be writing it) and returned in ``kept`` for the caller to
    name.

    Parameters
    ----------
    target
        The file whose folder to look in.

    Returns
    -------
    tuple of list of pathlib.Path
    """
    target = Path(os.path.realpath(target))
    here = _owner().rsplit("-", 1)[0]
    removed: list[Path] = []
    kept: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed, kept
    for entry in sorted(entries):
        name = entry.name
        if not name.endswith(TMP_MARKER):
            continue
        if not name.startswith(f".{target.name}.") and not name.startswith(f"..{target.name}."):
            continue
        match = _OWNER_RE.search(name)
        stale = match is not None and match["host"] == here and not _pid_runs(int(match["pid"]))
        if stale:
            try:
                entry.unlink()
            except OSError:
                kept.append(entry)
            else:
                removed.append(entry)
        else:
            kept.append(entry)
    return removed, kept
