"""Write output files whole or not at all."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from resdsl.errors import ResdslError, Span


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` to `path`; an OSError becomes E701.

    A new or regular file is replaced by renaming a temporary file over it, so a failure
    leaves the old file as it was and a reader never sees half a file; it keeps the old
    file's permission bits. A symlink is followed and its target replaced (or created). A
    character device or FIFO (/dev/null, a pipe), and whatever a path under /dev or /proc
    stands for (/dev/stdout redirected to a file), is appended to directly. A read-only
    file, a directory or any other kind of file is refused."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = _writable_mode(path)
        if (mode is None or stat.S_ISREG(mode)) and not _names_a_descriptor(path):
            _replace(Path(os.path.realpath(path)), payload, mode)
        else:  # a device, FIFO or open descriptor must not be renamed over
            with open(os.open(path, os.O_WRONLY | os.O_APPEND), "wb") as handle:
                handle.write(payload)
    except OSError as error:
        raise ResdslError(f"cannot write {path}: {error.strerror}", Span(str(path), 0, 0),
                          code="E701") from None


def _names_a_descriptor(path: str | Path) -> bool:
    """/dev/stdout, /dev/fd/N, /proc/self/fd/N: a file some process holds open, which
    `> file` or `>> file` set up; replacing it would cut the writer off or lose the log."""
    return os.path.abspath(path).startswith(("/dev/", "/proc/"))


def _writable_mode(path: str | Path) -> int | None:
    """The st_mode of what `path` names, symlinks followed; None where nothing is there
    yet. OSError for what cannot be written."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:  # a new file, or the missing target of a dangling symlink
        return None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise OSError(errno.EINVAL, "not a regular file, character device or FIFO")
    if not mode & 0o222:  # the bits, not access(): root may write anything
        raise PermissionError(errno.EACCES, "the file is read-only")
    return mode


def _replace(target: Path, payload: bytes, mode: int | None) -> None:
    """Rename a temporary file holding `payload` over `target`, with the permission bits
    of `mode`, or 0o666 & ~umask for a new file."""
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                     dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename makes it visible
        os.chmod(temporary, 0o666 & ~_umask() if mode is None else stat.S_IMODE(mode))
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
