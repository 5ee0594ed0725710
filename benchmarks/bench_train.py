"""Side by side, in one process: `resdsl train`'s loop against the plainest hand-written
PyTorch loop over the same model (CIFAR ResNet-56) and the same images, on this CPU.

The plain loop does only the work that training cannot skip: index a batch of in-memory
images, forward, cross-entropy, backward, SGD. resdsl's loop also augments every batch
(pad, crop, flip), reads it through a DataLoader, gathers per-step metrics, writes
metrics.jsonl and draws its progress line. Rounds alternate (resdsl, plain, plain,
resdsl, ...); each figure is the median over rounds of the images per second after the
first 10 steps of a round.

    python3 benchmarks/bench_train.py [--write] [--rounds N] [--steps N]
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import resdsl
from common import ROOT, write_section
from resdsl.training.data import cifar10
from resdsl.training.loop import TrainConfig, train
from resdsl.training.recipe import Recipe

ARCH, PARAMS, BATCH, WARMUP = ROOT / "archs/cifar-resnet.arch", {"n": 9}, 128, 10


def write_cifar(folder: Path, per_batch: int = 1024) -> None:
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per_batch).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))


def resdsl_loop(data: Path, out: Path, steps: int) -> float:
    config = TrainConfig(arch=str(ARCH), params=PARAMS, data=f"cifar10:{data}", out=out,
                         recipe=Recipe(batch=BATCH, lr=0.1, milestones=(), steps=steps),
                         log_every=WARMUP, eval_every=10 * steps, checkpoint_every=10 * steps,
                         progress=True)
    return train(config).images_per_second


def plain_loop(data: Path, steps: int) -> float:
    split, _ = cifar10(data)
    model = resdsl.load(ARCH, **PARAMS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images = split.images.float() / 255 - split.mean
    for step in range(steps):
        if step == WARMUP:
            start = time.perf_counter()
        index = torch.randint(0, len(images), (BATCH,))
        loss = torch.nn.functional.cross_entropy(model(images[index]), split.labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return BATCH * (steps - WARMUP) / (time.perf_counter() - start)


def report(rounds: int, steps: int) -> str:
    ours, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "cifar"
        data.mkdir()
        write_cifar(data)
        for i in range(rounds):
            runs = [("resdsl", lambda: ours.append(resdsl_loop(data, Path(tmp) / f"run{i}",
                                                               steps))),
                    ("plain", lambda: plain.append(plain_loop(data, steps)))]
            for _, run in (runs if i % 2 == 0 else runs[::-1]):
                run()
    a, b = statistics.median(ours), statistics.median(plain)
    return "\n".join([
        "<!-- bench_train:start -->",
        "## Training loop: `resdsl train` vs a plain PyTorch loop",
        "",
        f"Command: `python3 benchmarks/bench_train.py --write` ({time.strftime('%Y-%m-%d')}; "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, Python "
        f"{platform.python_version()}, torch {torch.__version__}).",
        "",
        f"CIFAR ResNet-56 (`cifar-resnet.arch --set n=9`), batch {BATCH}, fp32, on 5,120 "
        f"CIFAR-format images; {rounds} alternating rounds of {steps} steps.",
        "",
        "| loop | img/s (median) | all rounds |",
        "|---|---:|---|",
        f"| `resdsl train` (augmentation, DataLoader, metrics, progress) | {a:,.1f} | "
        f"{', '.join(f'{v:.1f}' for v in ours)} |",
        f"| plain loop (index, forward, backward, SGD) | {b:,.1f} | "
        f"{', '.join(f'{v:.1f}' for v in plain)} |",
        f"| **ratio** | **{a / b:.3f}** | |",
        "<!-- bench_train:end -->",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    text = report(args.rounds, args.steps)
    print(text)
    if args.write:
        write_section("bench_train", text)


if __name__ == "__main__":
    main()
