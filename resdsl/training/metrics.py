"""What a run records: `metrics.jsonl` (one line per training step and per evaluation),
optionally TensorBoard event files beside it, and the one speed meter that the progress
line, the ETA and the final figure all read."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from resdsl.errors import ResdslError, Span
from resdsl.output import write_atomic

METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"


@dataclass
class Window:
    """The steps since the last sync: for each, (summed loss, wrong answers, images) over
    all ranks, and the learning rate it ran at."""

    first_step: int
    rows: list[tuple[float, float, float]]
    rates: list[float]

    @property
    def images(self) -> float:
        return sum(row[2] for row in self.rows)

    @property
    def loss(self) -> float:
        return sum(row[0] for row in self.rows) / self.images

    @property
    def error(self) -> float:
        return sum(row[1] for row in self.rows) / self.images


class SpeedMeter:
    """Training images per second, timed between syncs. `window` is the rate since the
    previous sync (for the progress line); `overall` counts from the first sync on, so
    compilation and the first steps' allocations are left out (for the ETA and the
    result). Evaluations and checkpoints count in the window they fall in."""

    def __init__(self):
        self.last = time.perf_counter()
        self.first: float | None = None
        self.images = 0
        self.window: float | None = None

    def tick(self, images: int) -> None:
        now = time.perf_counter()
        self.window = images / max(now - self.last, 1e-9)
        if self.first is None:
            self.first = now
        else:
            self.images += images
        self.last = now

    @property
    def overall(self) -> float | None:
        if self.first is None or not self.images:
            return None
        return self.images / max(self.last - self.first, 1e-9)

    def eta(self, images_left: int) -> float | None:
        """Seconds until `images_left` more images are trained on."""
        rate = self.overall or self.window
        return images_left / rate if rate else None


class MetricsLog:
    """Rank 0's records in `out`. A new run starts `metrics.jsonl` afresh; a resumed one
    keeps the lines up to the checkpoint's step, so the file reads as one run. Lines
    are appended whole or the run stops: a full disk is an E701 error, and the torn line
    it may leave is dropped, with a note through `say`, when the run resumes."""

    def __init__(self, out: Path, resume_step: int | None, tensorboard: bool, say=print):
        self.path = out / METRICS
        kept = _lines_up_to(self.path, resume_step, say) if resume_step is not None else []
        write_atomic(self.path, "".join(kept))
        self.handle = self.path.open("ab", buffering=0)
        self.board = _summary_writer(out / TENSORBOARD, resume_step) if tensorboard else None

    def train(self, window: Window, images_per_second: float | None) -> None:
        """One line per step; for TensorBoard, the window's means at its last step."""
        lines = []
        for i, ((loss, wrong, count), lr) in enumerate(zip(window.rows, window.rates)):
            lines.append(_line(split="train", step=window.first_step + i, loss=loss / count,
                               error=wrong / count, lr=lr))
        self._append(lines)
        if self.board:
            step = window.first_step + len(window.rows) - 1
            for name, value in (("train/loss", window.loss), ("train/error", window.error),
                                ("train/lr", window.rates[-1]),
                                ("train/images_per_second", images_per_second)):
                if value is not None:
                    self.board.add_scalar(name, value, step)

    def test(self, step: int, loss: float, error: float, images: int) -> None:
        self._append([_line(split="test", step=step, loss=loss, error=error, images=images)])
        if self.board:
            self.board.add_scalar("test/loss", loss, step)
            self.board.add_scalar("test/error", error, step)

    def _append(self, lines: list[str]) -> None:
        """Write the lines with as many system calls as the disk needs; E701 when it is
        full or failing."""
        data = "".join(lines).encode()
        try:
            while data:
                data = data[self.handle.write(data):]
        except OSError as error:
            raise ResdslError(f"cannot append to {self.path}: {error.strerror}",
                              Span(str(self.path), 0, 0),
                              hint="free some space, then continue with --resume",
                              code="E701") from None

    def close(self) -> None:
        self.handle.close()
        if self.board:
            self.board.close()


def _line(**record) -> str:
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            record[key] = None  # JSON has no NaN
    return json.dumps(record) + "\n"


def _lines_up_to(path: Path, step: int, say) -> list[str]:
    """The lines of `path` up to `step`; a line that is not a whole record (a full disk
    tore it) is dropped with a note."""
    if not path.is_file():  # absent, or something write_atomic will refuse
        return []
    kept = []
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), 1):
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            if line.strip():
                say(f"{path}:{number}: dropped a line that is not a whole record "
                    f"({_excerpt(line)})")
    return kept


def _excerpt(line: str) -> str:
    return repr(line[:40] + ("…" if len(line) > 40 else ""))


def _summary_writer(folder: Path, resume_step: int | None):
    """torch's TensorBoard writer; on resume, events after the checkpoint are purged."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ResdslError("--tensorboard needs the tensorboard package",
                          hint="pip install tensorboard (or 'resdsl[tensorboard]')",
                          code="E708") from None
    return SummaryWriter(str(folder), purge_step=None if resume_step is None else resume_step + 1)
