"""The paper's training recipe as defaults (sec. 3.4 for ImageNet, sec. 4.2 for CIFAR);
schedule.py turns its rates and milestones into the learning rate at each step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Recipe:
    batch: int
    lr: float
    milestones: tuple[int, ...]  # the learning rate is divided by 10 at each
    steps: int
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_lr: float | None = None  # used until the training error falls below warmup_until
    warmup_until: float = 0.8


# CIFAR (sec. 4.2): batch 128, lr 0.1 divided by 10 at 32k and 48k, stop at 64k.
CIFAR = Recipe(batch=128, lr=0.1, milestones=(32_000, 48_000), steps=64_000)
# ImageNet (sec. 3.4): batch 256, lr 0.1 divided by 10 "when the error plateaus", up to
# 60 x 10^4 iterations; fixed steps here stand in for the plateaus.
IMAGENET = Recipe(batch=256, lr=0.1, milestones=(150_000, 300_000, 450_000), steps=600_000)
DEEP_CIFAR = 110  # "for the 110-layer network ... 0.01 to warm up" until error < 80%


def default_recipe(input_size: int, layers: int) -> Recipe:
    """CIFAR's recipe for small inputs, ImageNet's for 224; the warm-up for CIFAR nets of
    110 layers or more."""
    if input_size > 64:
        return Recipe(**IMAGENET.__dict__)
    recipe = Recipe(**CIFAR.__dict__)
    if layers >= DEEP_CIFAR:
        recipe.warmup_lr = 0.01
    return recipe

