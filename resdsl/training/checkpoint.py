"""Checkpoints that are whole, checked and read as data.

One holds everything a resumed run needs to repeat the uninterrupted one bit for bit: the
weights, the optimizer's momentum, the schedule, the step and every random generator.
Each is written to a temporary file and renamed (`checkpoint-00001000.pt`), then its
sha256 beside it in `sha256sum`'s format (`checkpoint-00001000.sha256`); the newest few
are kept. Resuming takes the newest one whose checksum matches and whose contents are
plain data (`torch.load(weights_only=True)`: a crafted file cannot run code), and says
why it passed over any newer one.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resdsl.errors import ResdslError, Span
from resdsl.output import write_atomic

PATTERN = "checkpoint-*.pt"
KEYS = ("model", "optimizer", "schedule", "step", "arch", "params", "recipe", "rng")


def path_for(folder: Path, step: int) -> Path:
    return folder / f"checkpoint-{step:08d}.pt"


def _checksum_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def _step_of(path: Path) -> int | None:
    match = re.fullmatch(r"checkpoint-(\d+)\.pt", path.name)
    return int(match.group(1)) if match else None


def saved(folder: Path) -> list[Path]:
    """The checkpoint files in `folder`, newest first."""
    found = [p for p in folder.glob(PATTERN) if _step_of(p) is not None and p.is_file()]
    return sorted(found, key=_step_of, reverse=True)


def save(folder: Path, state: dict, keep: int) -> Path:
    """Write the checkpoint of `state["step"]` and its checksum, then delete all but the
    newest `keep`. A failure (E701) leaves the earlier checkpoints as they were."""
    buffer = io.BytesIO()
    torch.save(dict(state, rng=rng_state()), buffer)
    payload = buffer.getvalue()
    path = path_for(folder, state["step"])
    try:
        write_atomic(path, payload)
    except ResdslError as error:
        raise ResdslError(error.message, error.span, code="E701",
                          hint="the earlier checkpoints are intact: free some space, then "
                               "continue with --resume") from None
    try:
        write_atomic(_checksum_path(path), f"{hashlib.sha256(payload).hexdigest()}  "
                                           f"{path.name}\n")
    except ResdslError:
        path.unlink()  # unchecked, it would only be passed over on resume
        raise
    for old in saved(folder)[keep:]:
        remove(old)
    return path


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    _checksum_path(path).unlink(missing_ok=True)


@dataclass
class Found:
    """The checkpoint a run resumes from, and the newer ones it passed over, with why."""

    path: Path
    state: dict
    skipped: list[tuple[Path, str]]


def newest_intact(folder: Path) -> Found | None:
    """The newest checkpoint in `folder` that reads back whole; None when there is none
    at all; E707 when every one is damaged."""
    skipped = []
    for path in saved(folder):
        try:
            return Found(path, read(path), skipped)
        except Damaged as reason:
            skipped.append((path, str(reason)))
    if skipped:
        raise ResdslError(f"no checkpoint in {folder} is intact: " + "; ".join(
            f"{path.name} {reason}" for path, reason in skipped), Span(str(folder), 0, 0),
            hint="start again with --overwrite", code="E707")
    return None


class Damaged(Exception):
    """Why a checkpoint file cannot be resumed from."""


def read(path: Path) -> dict:
    """A checkpoint's state, checked against its sha256 and loaded as data only."""
    try:
        expected = _checksum_path(path).read_text(encoding="ascii").split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        raise Damaged(f"has no readable checksum file ({_checksum_path(path).name}); "
                      "the run may have stopped while saving it") from None
    try:
        payload = path.read_bytes()
    except OSError as error:
        raise Damaged(f"cannot be read ({error.strerror})") from None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise Damaged(f"is damaged: its sha256 is {actual[:12]}…, "
                      f"not {expected[:12]}… as recorded")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        raise Damaged("holds objects other than tensors and plain data"
                      + (f" ({found.group(1)})" if found else "")
                      + ", which resdsl does not load") from None
    except Exception as error:  # not a torch file at all
        raise Damaged(f"is not a torch checkpoint ({error})") from None
    missing = [key for key in KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise Damaged(f"lacks {', '.join(map(repr, missing))}")
    return state


def check_same_run(state: dict, arch: str, params: dict, path: Path) -> None:
    """A checkpoint resumes only the network (file and --set values) that wrote it."""
    if (Path(str(state["arch"])).name, state["params"]) != (Path(arch).name, params):
        raise ResdslError(f"--resume: {path.name} is of {_named(state['arch'], state['params'])}, "
                          f"not {_named(arch, params)}",
                          Span(str(path), 0, 0), code="E707")


def _named(arch, params: dict) -> str:
    return " ".join([str(arch), *(f"--set {k}={v}" for k, v in params.items())])


def rng_state() -> dict:
    """Every generator a step may draw from (dropout uses torch's), as tensors and plain
    values so that the checkpoint loads with weights_only."""
    kind, key, position, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (kind, torch.from_numpy(key.astype(np.int64)), position, has_gauss,
                       gauss)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, key, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), position, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
