"""What a training run is asked to do (`TrainConfig`), what it reports (`Result`), and
the checks on the request that need no model: options that contradict each other or do
not fit the number of processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from resdsl.errors import ResdslError
from resdsl.training.recipe import Recipe


@dataclass
class TrainConfig:
    arch: str
    recipe: Recipe
    data: str  # "cifar10:DIR", "imagefolder:DIR" or "synthetic"
    out: Path
    params: dict = field(default_factory=dict)
    eval_every: int = 2000
    checkpoint_every: int = 1000
    log_every: int = 20
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    amp: str | None = None  # "bf16" or "fp16"
    channels_last: bool = False
    compile: bool = False
    workers: int = 0
    resume: bool | Literal["auto"] = False  # True: a checkpoint must exist; "auto": if one does
    overwrite: bool = False  # replace an earlier run's records in `out`
    keep_checkpoints: int = 3
    synthetic_size: int = 1024
    test_images: int | None = None  # the first N test images for every evaluation
    progress: bool = True
    tensorboard: bool = False


@dataclass
class Result:
    step: int
    test_error: float | None
    interrupted: bool = False
    images_per_second: float | None = None  # training steps after the first sync, all ranks


def check(config: TrainConfig, world: int) -> None:
    if config.resume and config.overwrite:
        raise ResdslError("--resume continues the run in --out and --overwrite replaces it: "
                          "give one", code="E707")
    if config.resume not in (False, True, "auto"):
        raise ResdslError(f"resume must be False, True or 'auto', not {config.resume!r}",
                          code="E707")
    if config.keep_checkpoints < 1:
        raise ResdslError("--keep-checkpoints must be at least 1", code="E707")
    if config.recipe.batch % world:
        raise ResdslError(f"the batch of {config.recipe.batch} does not split over {world} "
                          "processes", hint="choose a batch that the process count divides",
                          code="E707")
    if config.checkpoint_every % config.log_every or config.eval_every % config.log_every:
        raise ResdslError("--checkpoint-every and --eval-every must be multiples of "
                          f"--log-every ({config.log_every})", code="E707")
