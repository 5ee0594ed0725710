"""Side by side, in one process: `resdsl train`'s loop against the plainest hand-written
PyTorch loop over the same model and the same images, on a CPU or a GPU.

The plain loop does only the work that training cannot skip: index a batch of in-memory
images, scale it, move it to the device, forward, cross-entropy, backward, SGD, under
the same autocast and memory layout. resdsl's loop also augments every batch (pad, crop,
flip) on the device, steps the LR scheduler, gathers per-step metrics,
writes metrics.jsonl and draws its progress. Both read the synthetic source's images
(CIFAR-sized or ImageNet-sized). Rounds alternate (resdsl, plain, plain, resdsl, ...);
each figure is the median over rounds of the images per second after the first 10 steps.

    python3 benchmarks/bench_train.py [--write] [--rounds N] [--steps N]      # ResNet-56, CPU
    python3 benchmarks/bench_train.py --device cuda --amp bf16 --channels-last \\
        --network resnet56 --network resnet110 --network resnet50 --write     # a GPU
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import resdsl
from common import ROOT, sync, write_section
from resdsl.backends.pytorch.devices import describe, resolve_device
from resdsl.training.data import synthetic
from resdsl.training.loop import TrainConfig, train
from resdsl.training.recipe import Recipe
from resdsl.training.step import autocast

WARMUP = 10
NETWORKS = {  # .arch, --set, batch on a GPU, batch on a CPU
    "resnet56": ("archs/cifar-resnet.arch", {"n": 9}, 128, 128),
    "resnet110": ("archs/cifar-resnet.arch", {"n": 18}, 128, 128),
    "resnet50": ("archs/resnet50-v1.5.arch", {}, 256, 16),
}


def resdsl_loop(name: str, out: Path, args) -> float:
    path, params, batch, shape = network(name, args)
    config = TrainConfig(arch=str(ROOT / path), params=params, data="synthetic", out=out,
                         recipe=Recipe(batch=batch, lr=0.1, milestones=(), steps=args.steps),
                         log_every=WARMUP, eval_every=10 * args.steps,
                         checkpoint_every=10 * args.steps, device=args.device, amp=args.amp,
                         channels_last=args.channels_last, synthetic_size=images(batch),
                         progress=True)
    return train(config).images_per_second


def plain_loop(name: str, args) -> float:
    path, params, batch, shape = network(name, args)
    device = resolve_device(args.device)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    split, _ = synthetic(shape, 1000 if shape[-1] > 64 else 10, size=images(batch))
    torch.manual_seed(0)
    model = resdsl.load(ROOT / path, **params).to(device, memory_format=layout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for step in range(args.steps):
        if step == WARMUP:
            sync(device)
            start = time.perf_counter()
        index = torch.randint(0, len(split), (batch,))
        x = (split.images[index].float() / 255 - split.mean).to(device, memory_format=layout)
        y = split.labels[index].to(device)
        with autocast(device, args.amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    return batch * (args.steps - WARMUP) / (time.perf_counter() - start)


def network(name: str, args):
    path, params, gpu_batch, cpu_batch = NETWORKS[name]
    shape = tuple(resdsl.count(ROOT / path, **params).input)
    return path, params, gpu_batch if args.device != "cpu" else cpu_batch, shape


def images(batch: int) -> int:
    """Enough for 8 training batches (the source keeps 7/8 for training)."""
    return batch * 8 * 8 // 7 + 8


def report(args) -> str:
    device = resolve_device(args.device)
    settings = ", ".join(s for s in [args.amp or "fp32", args.channels_last and
                                     "channels-last"] if s)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.network:
            ours, plain = [], []
            for i in range(args.rounds):
                runs = [lambda: ours.append(resdsl_loop(name, Path(tmp) / f"{name}{i}", args)),
                        lambda: plain.append(plain_loop(name, args))]
                for run in (runs if i % 2 == 0 else runs[::-1]):
                    run()
            a, b = statistics.median(ours), statistics.median(plain)
            batch = network(name, args)[2]
            rows += [f"| {name} | {batch} | `resdsl train` | {a:,.1f} | "
                     f"{', '.join(f'{v:,.1f}' for v in ours)} |",
                     f"| {name} | {batch} | plain loop | {b:,.1f} | "
                     f"{', '.join(f'{v:,.1f}' for v in plain)} |",
                     f"| {name} | | **resdsl / plain** | **{a / b:.3f}** | |"]
    section = "bench_train" if device.type == "cpu" else "bench_train_gpu"
    return "\n".join([
        f"<!-- {section}:start -->",
        f"## Training loop on {device.type}: `resdsl train` vs a plain PyTorch loop",
        "",
        f"Command: `python3 benchmarks/bench_train.py {' '.join(sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d')}; {describe(device)}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}).",
        "",
        f"{settings}; synthetic images of the network's input size; {args.rounds} "
        f"alternating rounds of {args.steps} steps, images/s after the first {WARMUP}.",
        "",
        "| network | batch | loop | img/s (median) | all rounds |",
        "|---|---:|---|---:|---|",
        *rows,
        f"<!-- {section}:end -->",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--amp", choices=("bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--network", action="append", choices=sorted(NETWORKS),
                        help="repeat for several (default resnet56)")
    args = parser.parse_args()
    args.network = args.network or ["resnet56"]
    text = report(args)
    print(text)
    if args.write:
        write_section(text.split(":start")[0].removeprefix("<!-- "), text)


if __name__ == "__main__":
    main()
