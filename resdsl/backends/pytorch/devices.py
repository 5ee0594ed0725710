"""The one rule for `--device` (and `device=`), shared by `compile --check`, `train` and
`resdsl.load`: `auto`, `cpu`, `cuda` or `cuda:N`, always resolved to a device with an
index, since `torch.cuda.set_device` and DistributedDataParallel need one."""

from __future__ import annotations

import re

import torch

from resdsl.errors import ResdslError

SPELLINGS = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` is this process's GPU when there is one, else the CPU; `cuda` is this
    process's GPU (`LOCAL_RANK` under torchrun, else GPU 0)."""
    spelling = str(name).strip().lower()
    if spelling == "auto":
        spelling = "cuda" if torch.cuda.is_available() else "cpu"
    if spelling == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::([0-9]+))?", spelling)
    if match is None:
        raise ResdslError(f"unknown device '{name}'", hint=f"use {SPELLINGS}", code="E704")
    if not torch.cuda.is_available():
        why = ("this torch was built without CUDA" if torch.version.cuda is None
               else f"torch {torch.__version__} finds no NVIDIA GPU or driver")
        raise ResdslError(f"--device {name}: CUDA is not available ({why})",
                          hint="run on a machine with an NVIDIA GPU, or use --device cpu",
                          code="E704")
    index = int(match.group(1)) if match.group(1) is not None else local_rank
    count = torch.cuda.device_count()
    if index >= count:
        raise ResdslError(f"--device {name}: this machine has {count} GPU"
                          f"{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1})",
                          hint=f"use {SPELLINGS} with N below {count}", code="E704")
    return torch.device("cuda", index)


def describe(device: torch.device) -> str:
    """`cuda:0 (NVIDIA H100 80GB HBM3)` or `cpu (8 threads)`, for what a command prints."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
