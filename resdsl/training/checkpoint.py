"""Checkpoints that are whole or absent: written to a temporary file and renamed. One
holds everything a resumed run needs to repeat the uninterrupted one bit for bit: the
weights, the optimizer's momentum, the schedule, the step and every random generator."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from resdsl.errors import ResdslError, Span
from resdsl.output import write_atomic

NAME = "checkpoint.pt"


def save(folder: Path, state: dict) -> Path:
    state = dict(state, rng=rng_state())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = folder / NAME
    write_atomic(path, buffer.getvalue())
    return path


def load(folder: Path) -> dict:
    path = folder / NAME
    if not path.exists():
        raise ResdslError(f"--resume: there is no {NAME} in {folder}", Span(str(path), 0, 0),
                          hint="resume with the --out folder of the run to continue", code="E707")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a truncated or foreign file
        raise ResdslError(f"cannot read {path}: {error}", Span(str(path), 0, 0),
                          code="E707") from None
    set_rng_state(state["rng"])
    return state


def check_same_run(state: dict, arch: str, params: dict, folder: Path) -> None:
    """A checkpoint resumes only the network (file and --set values) that wrote it."""
    if (Path(state["arch"]).name, state["params"]) != (Path(arch).name, params):
        raise ResdslError(f"--resume: the checkpoint in {folder} is of {state['arch']} "
                          f"{state['params'] or ''}, not {arch} {params or ''}",
                          Span(str(folder / NAME), 0, 0), code="E707")


def rng_state() -> dict:
    """Every generator a step may draw from (dropout uses torch's)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
