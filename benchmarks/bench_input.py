"""Side by side, in one run: resdsl's input pipeline against the model it feeds and
against what a user would otherwise write.

1. The pipeline alone, images/s, on the device (`--device`):
   - CIFAR's recipe on in-memory images (pad, crop, flip; a gather on the device);
   - the paper's ImageNet recipe on JPEG files (random shorter side in [256, 480], 224
     crop, flip) written here, at 0, 1, 2, ... loader workers, against torchvision's
     ImageFolder with the same recipe as PIL transforms at the same workers; and the
     workers' share alone (decoding into canvases and drawing boxes), per core;
2. what the model consumes: a ResNet-50 (224) or ResNet-56 (CIFAR) training step's
   images/s on the same device, and the pipeline's multiple of it;
3. `resdsl train` against a plain PyTorch loop on the same model (bench_train.py's two
   loops) for ResNet-56 on in-memory data.

    python3 benchmarks/bench_input.py [--write]                     # the CPU
    python3 benchmarks/bench_input.py --device cuda --amp bf16 --channels-last --write
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

import resdsl
from bench_train import plain_loop, resdsl_loop
from common import ROOT, sync, write_section
from resdsl.backends.pytorch.devices import describe, resolve_device
from resdsl.training.data import image_folder, synthetic
from resdsl.training.feed import EpochBatches, batches
from resdsl.training.step import TrainStep

JPEG_SIZE = (500, 375)  # ImageNet's typical photo
CPU = torch.device("cpu")


def write_jpegs(folder: Path, count: int) -> None:
    """`count` photo-like JPEGs (smooth shapes plus grain, quality 90) in two classes,
    for train/ and val/."""
    rng = np.random.default_rng(0)
    from PIL import Image

    for part in ("train", "val"):
        for i in range(count):
            low = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            image = Image.fromarray(low).resize(JPEG_SIZE, Image.BICUBIC)
            grain = rng.normal(0, 12, (JPEG_SIZE[1], JPEG_SIZE[0], 3))
            pixels = np.clip(np.asarray(image, np.float64) + grain, 0, 255).astype(np.uint8)
            (folder / part / str(i % 2)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / part / str(i % 2) / f"{i}.jpg", quality=90)


def timed(make_batches, device, images: int) -> float:
    """Images/s over the batches after the first (worker start-up is left out)."""
    seen, start = 0, None
    for batch in make_batches():
        if start is None:
            sync(device)
            start = time.perf_counter()
        else:
            seen += len(batch[-1])  # the labels
        if seen >= images:
            break
    sync(device)
    return seen / (time.perf_counter() - start)


def torchvision_loader(folder: Path, batch: int, workers: int):
    """The same recipe as a user writes it with torchvision: PIL resize of the shorter
    side to a random size in [256, 480], random 224 crop, flip, to tensor, normalise."""
    from torchvision import datasets, transforms
    from torchvision.transforms import functional

    class PaperScale:
        def __call__(self, image):
            return functional.resize(image, random.randint(256, 480))

    recipe = transforms.Compose([PaperScale(), transforms.RandomCrop(224),
                                 transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                 transforms.Normalize((0.485, 0.456, 0.406), (1, 1, 1))])
    data = datasets.ImageFolder(str(folder / "train"), transform=recipe)
    return torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True,
                                       num_workers=workers, drop_last=True)


def model_rate(path: str, params: dict, batch: int, device, args) -> float:
    """Training images/s of the network on `device`, on images already there."""
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = resdsl.load(ROOT / path, **params).to(device, memory_format=layout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    step = TrainStep(model, optimizer, schedule, device, args.amp, args.channels_last)
    shape = tuple(resdsl.count(ROOT / path, **params).input)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    rates = []
    for i in range(args.model_steps + 1):
        sync(device)
        start = time.perf_counter()
        step(x, y)
        sync(device)
        if i:  # the first step allocates
            rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def report(args) -> str:
    device = resolve_device(args.device)
    rows = []
    # CIFAR in memory
    cifar, _ = synthetic((3, 32, 32), 10, size=50_000 * 8 // 7 if args.full else 8192)
    cifar = cifar.to(device)
    epoch = [0]

    def cifar_batches():
        epoch[0] += 1
        return batches(cifar, 128, 0, epoch[0], 0, 1, 0, 0, device)

    cifar_rate = statistics.median(timed(cifar_batches, device, len(cifar) - 256)
                                   for _ in range(args.rounds))
    resnet56 = model_rate("archs/cifar-resnet.arch", {"n": 9}, 128, device, args)
    rows.append(f"| CIFAR recipe, in memory, batch 128 | resdsl | — | {cifar_rate:,.0f} | "
                f"ResNet-56: {resnet56:,.0f} | **{cifar_rate / resnet56:,.0f}x** |")
    # JPEG files
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_jpegs(folder, args.jpegs)
        train_split, _ = image_folder(folder, crop=224)
        train_split = train_split.to(device)
        resnet50 = model_rate("archs/resnet50-v1.5.arch", {}, args.batch, device, args)
        for workers in args.workers:
            decoding = statistics.median(timed(
                lambda: DataLoader(EpochBatches(train_split, args.batch, 0, 0, 0, 1),
                                   batch_size=None, num_workers=workers),
                CPU, args.jpegs - 2 * args.batch) for _ in range(args.rounds))
            ours = statistics.median(timed(
                lambda: batches(train_split, args.batch, 0, 0, 0, 1, 0, workers, device),
                device, args.jpegs - 2 * args.batch) for _ in range(args.rounds))
            theirs = statistics.median(timed(
                lambda: ((x.to(device), y) for x, y in torchvision_loader(
                    folder, args.batch, workers)),
                device, args.jpegs - 2 * args.batch) for _ in range(args.rounds))
            cores = max(workers, 1)
            rows.append(f"| ImageNet recipe, JPEG {JPEG_SIZE[0]}x{JPEG_SIZE[1]}, batch "
                        f"{args.batch} | resdsl | {workers} | {ours:,.0f} ({ours / cores:,.0f}"
                        f"/core) | ResNet-50: {resnet50:,.1f} | **{ours / resnet50:,.1f}x** |")
            rows.append(f"| | resdsl, decoding alone (workers' share) | {workers} | "
                        f"{decoding:,.0f} ({decoding / cores:,.0f}/core) | | |")
            rows.append(f"| | torchvision ImageFolder + transforms | {workers} | "
                        f"{theirs:,.0f} ({theirs / cores:,.0f}/core) | | "
                        f"{theirs / resnet50:,.1f}x |")
    # the whole loop
    loops = []
    with tempfile.TemporaryDirectory() as tmp:
        args.network = "resnet56"
        for i in range(args.rounds):
            loops.append((resdsl_loop("resnet56", Path(tmp) / str(i), args),
                          plain_loop("resnet56", args)))
    ours_loop = statistics.median(a for a, _ in loops)
    plain = statistics.median(b for _, b in loops)
    return "\n".join([
        "<!-- bench_input:start -->" if device.type == "cpu" else "<!-- bench_input_gpu:start -->",
        f"## Input pipeline on {device.type}: images/s delivered, against the model and "
        "torchvision",
        "",
        f"Command: `python3 benchmarks/bench_input.py {' '.join(sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d')}; {describe(device)}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}; "
        f"{args.amp or 'fp32'}{', channels-last' if args.channels_last else ''}). "
        f"Medians of {args.rounds} rounds; the first batch of each (worker start-up) is "
        "left out.",
        "",
        "| pipeline | made by | workers | images/s | the model trains at (images/s) | "
        "pipeline / model |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"The whole loop, ResNet-56 on in-memory CIFAR-sized images, batch 128: `resdsl "
        f"train` {ours_loop:,.1f} images/s, the plain loop {plain:,.1f}: "
        f"**{ours_loop / plain:.3f}x** (rounds: "
        + ", ".join(f"{a:,.1f}/{b:,.1f}" for a, b in loops) + ").",
        "<!-- bench_input:end -->" if device.type == "cpu" else "<!-- bench_input_gpu:end -->",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--amp", choices=("bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="steps per whole-loop round")
    parser.add_argument("--model-steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32, help="ImageNet-recipe batch")
    parser.add_argument("--jpegs", type=int, default=384)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--full", action="store_true", help="CIFAR's 50,000 images")
    args = parser.parse_args()
    text = report(args)
    print(text)
    if args.write:
        name = "bench_input" if resolve_device(args.device).type == "cpu" else "bench_input_gpu"
        write_section(name, text)


if __name__ == "__main__":
    main()
