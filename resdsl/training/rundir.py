"""The --out folder of a run. One run writes to it at a time (a lock that the system
drops when the process dies, however it dies), and a run does not start over the records
of an earlier one unless told to: `--resume` continues it, `--overwrite` replaces it."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from resdsl.errors import ResdslError, Span
from resdsl.training import checkpoint
from resdsl.training.metrics import METRICS, TENSORBOARD

LOCK = ".lock"


class Claim:
    """Rank 0's hold on `out`, from `claim` until `release`."""

    def __init__(self, out: Path, handle: int, created: bool):
        self.out, self.handle, self.created = out, handle, created

    def release(self) -> None:
        """Drop the lock; a folder this run created and left empty (it failed before
        writing anything) goes too."""
        if self.created and os.listdir(self.out) == [LOCK]:
            (self.out / LOCK).unlink()
            self.out.rmdir()
        os.close(self.handle)  # closing the descriptor drops the lock


def claim(out: Path) -> Claim:
    """Create `out` if need be and lock it; E701 where it cannot be written, E710 while
    another run holds it."""
    if out.exists() and not out.is_dir():
        raise ResdslError(f"--out {out} is a file, not a folder", Span(str(out), 0, 0),
                          hint="give a folder for the run's records", code="E701")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ResdslError(f"cannot write to --out {out}: {_reason(out, error)}",
                          Span(str(out), 0, 0), code="E701") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(handle, 64).decode("ascii", "replace").strip() or "another process"
        os.close(handle)
        raise ResdslError(f"--out {out} is in use by another run ({holder})",
                          Span(str(out), 0, 0),
                          hint="wait for it to end, or give another --out", code="E710") from None
    os.ftruncate(handle, 0)
    os.pwrite(handle, f"pid {os.getpid()}\n".encode(), 0)
    return Claim(out, handle, created)


def _reason(out: Path, error: OSError) -> str:
    """The OS's reason, naming the file that stands where a folder is needed."""
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file"
    return error.strerror or str(error)


def records(out: Path) -> list[str]:
    """What an earlier run left in `out`: its metrics, checkpoints and event files."""
    found = [name for name in (METRICS, TENSORBOARD) if (out / name).exists()]
    return found + [path.name for path in checkpoint.saved(out)]


def refuse_earlier_run(out: Path) -> None:
    """E710 when a run that neither resumes nor overwrites would start over records."""
    found = records(out)
    if found:
        listed = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        raise ResdslError(f"--out {out} holds an earlier run ({listed})", Span(str(out), 0, 0),
                          hint="continue it with --resume, or replace it with --overwrite "
                               "(which deletes those files)", code="E710")


def clear(out: Path) -> None:
    """Delete an earlier run's records, for --overwrite or a run that saved no checkpoint."""
    try:
        (out / METRICS).unlink(missing_ok=True)
        for path in checkpoint.saved(out):
            checkpoint.remove(path)
    except OSError as error:
        raise ResdslError(f"cannot delete {error.filename}: {error.strerror}",
                          Span(str(error.filename), 0, 0),
                          hint="move it out of --out, or give another --out",
                          code="E701") from None
    shutil.rmtree(out / TENSORBOARD, ignore_errors=True)
