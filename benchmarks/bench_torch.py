"""Side by side, in one run: resdsl's modules vs the PyTorch models a user would otherwise
use (torchvision's ResNets; a hand-written CIFAR ResNet), on the same data.

1. A training step (forward, cross-entropy, backward, SGD with momentum and weight decay),
   timed in pairs whose order alternates (A B, B A, ...); the ratio is the median of the
   per-pair ratios, so that drift in the machine's speed cancels.
2. Inference with `fold_bn=True` against torchvision's eval mode, with trained-looking BN
   statistics, and the largest difference between their outputs.

    python3 benchmarks/bench_torch.py                       # CPU, prints the report
    python3 benchmarks/bench_torch.py --write               # and puts it in BENCHMARKS.md
    python3 benchmarks/bench_torch.py --device cuda --amp bfloat16 --channels-last --compile \\
        --only train --write                                # a GPU's training throughput
    python3 benchmarks/bench_torch.py --device cuda --amp bfloat16 --only infer \\
        --infer-batch 256 --profile                         # folding on a GPU, and why
    python3 benchmarks/bench_torch.py --family --write      # the family vs torchvision/timm

Needs `pip install -e '.[test]'` (torchvision; timm for --family).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext

import torch
import torchvision

import resdsl
from common import CIFAR_TORCH, ROOT, sync, write_section

TRAINING = [  # label, .arch file and --set, the model a user would otherwise build, batch, size
    ("ResNet-50 v1.5", ("archs/resnet50-v1.5.arch", {}), "torchvision.models.resnet50()", 32, 224),
    ("ResNet-18", ("archs/resnet18.arch", {}), "torchvision.models.resnet18()", 32, 224),
    ("CIFAR ResNet-110", ("archs/cifar-resnet.arch", {"n": 18}), "cifar_resnet(18)", 128, 32),
]
FAMILY = [  # with --family: training steps and eval forwards against torchvision's and timm's
    ("ResNeXt-50 32x4d", ("archs/resnext50-32x4d.arch", {}), "torchvision.models.resnext50_32x4d()", 8, 224),
    ("Wide ResNet-50-2", ("archs/wide-resnet50-2.arch", {}), "torchvision.models.wide_resnet50_2()", 8, 224),
    ("ResNet-50-D", ("archs/resnet50-d.arch", {}), 'timm.create_model("resnet50d")', 8, 224),
    ("SE-ResNet-50", ("archs/se-resnet50.arch", {}), 'timm.create_model("seresnet50")', 8, 224),
    ("ResNet-50 v2", ("archs/resnet50-v2.arch", {}), 'timm.create_model("resnetv2_50")', 8, 224),
]
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 FLOP/s


def reference(expression: str) -> torch.nn.Module:
    namespace = {"torchvision": torchvision}
    if "timm" in expression:
        import timm

        namespace["timm"] = timm
    exec(CIFAR_TORCH, namespace)
    return eval(expression, namespace)


class Trainer:
    """One model's training step on fixed data, under the requested settings."""

    def __init__(self, model, batch, size, classes, args):
        device = torch.device(args.device)
        fmt = torch.channels_last if args.channels_last else torch.contiguous_format
        self.model = model.to(device, memory_format=fmt).train()
        self.step_fn = torch.compile(self.model) if args.compile else self.model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                         weight_decay=1e-4)
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 3, size, size, generator=generator).to(device,
                                                                          memory_format=fmt)
        self.y = torch.randint(0, classes, (batch,), generator=generator).to(device)
        self.device = device
        self.autocast = (torch.autocast(device.type, dtype=getattr(torch, args.amp))
                         if args.amp else nullcontext())

    def step(self) -> float:
        sync(self.device)
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            loss = torch.nn.functional.cross_entropy(self.step_fn(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        sync(self.device)
        return time.perf_counter() - start

    def forward(self) -> float:
        """One eval-mode forward, as inference runs it."""
        self.model.eval()
        sync(self.device)
        start = time.perf_counter()
        with torch.inference_mode(), self.autocast:
            self.step_fn(self.x)
        sync(self.device)
        self.model.train()
        return time.perf_counter() - start


def paired(ours, theirs, timed: str, args) -> tuple[float, float, float]:
    """(median ratio of pairs, our median, their median) of one timed method."""
    for _ in range(args.warmup):
        getattr(ours, timed)(), getattr(theirs, timed)()
    a, b = [], []
    for i in range(args.pairs):
        if i % 2 == 0:
            a.append(getattr(ours, timed)()), b.append(getattr(theirs, timed)())
        else:
            b.append(getattr(theirs, timed)()), a.append(getattr(ours, timed)())
    return statistics.median(x / y for x, y in zip(a, b)), statistics.median(a), statistics.median(b)


def family(args) -> list[str]:
    """The family's modules against the library models they match: a training step and
    an eval forward each, timed in alternating pairs."""
    rows = ["| network | batch | reference | train: resdsl / reference | resdsl step (s) | "
            "reference step (s) | eval forward: resdsl / reference | resdsl (s) | reference (s) |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for label, (path, params), expression, batch, size in FAMILY:
        torch.manual_seed(0)
        summary = resdsl.count(ROOT / path, **params)
        ours = Trainer(resdsl.load(ROOT / path, **params), batch, size, summary.output[0], args)
        theirs = Trainer(reference(expression), batch, size, summary.output[0], args)
        train = paired(ours, theirs, "step", args)
        infer = paired(ours, theirs, "forward", args)
        rows.append(f"| {label} | {batch} | `{expression}` | **{train[0]:.3f}** | {train[1]:.3f} "
                    f"| {train[2]:.3f} | **{infer[0]:.3f}** | {infer[1]:.3f} | {infer[2]:.3f} |")
        del ours, theirs
    return rows


def training(args) -> list[str]:
    rows = ["| network | batch | resdsl step (s) | reference step (s) | reference | "
            "resdsl / reference (median of pairs) | resdsl img/s | reference img/s |",
            "|---|---:|---:|---:|---|---:|---:|---:|"]
    mfu = []
    for label, (path, params), expression, batch, size in TRAINING:
        torch.manual_seed(0)
        summary = resdsl.count(ROOT / path, **params)
        ours = Trainer(resdsl.load(ROOT / path, **params), batch, size, summary.output[0], args)
        theirs = Trainer(reference(expression), batch, size, summary.output[0], args)
        ratio, ta, tb = paired(ours, theirs, "step", args)
        rows.append(f"| {label} | {batch} | {ta:.3f} | {tb:.3f} | `{expression}` | "
                    f"**{ratio:.3f}** | {batch / ta:,.0f} | {batch / tb:,.0f} |")
        peak = next((v for k, v in BF16_PEAK.items() if args.device.startswith("cuda")
                     and k in torch.cuda.get_device_name()), None)
        if peak and args.amp == "bfloat16":
            flops = 3 * 2 * summary.macs * batch / ta  # forward + backward = 3x forward
            mfu.append(f"- {label}: {flops / 1e12:,.0f} TFLOP/s of model FLOPs "
                       f"(3 x 2 x MACs per image), {100 * flops / peak:.1f}% of the "
                       f"{peak / 1e12:,.0f} TFLOP/s dense bf16 peak")
        del ours, theirs
    return rows + ([""] + mfu if mfu else [])


def calibrated(model: torch.nn.Module, size: int) -> torch.nn.Module:
    """Give BN the running statistics of real training (a few train-mode passes)."""
    generator = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 3, size, size, generator=generator) * 2 - 0.5)
    return model.eval()


def inference(args) -> list[str]:
    """The folded module against the same network unfolded, in the same layout, precision
    and device, and against torchvision's eval; with --profile, where each spends its time."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    theirs = calibrated(torchvision.models.resnet50(), 224)
    weights = theirs.state_dict()
    path = ROOT / "archs/resnet50-v1.5.arch"
    unfolded = resdsl.load(path, naming="torchvision", state_dict=weights).eval()
    folded = resdsl.load(path, naming="torchvision", fold_bn=True, state_dict=weights)
    channels_last = calibrated(torchvision.models.resnet50(), 224)
    channels_last.load_state_dict(weights)
    x = torch.randn(args.infer_batch, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    x_cl = x.to(memory_format=torch.channels_last)
    runs = {"torchvision eval": (theirs, x),
            "torchvision eval, channels_last": (channels_last, x_cl),
            "resdsl eval (unfolded), channels_last": (unfolded, x_cl),
            "resdsl fold_bn=True": (folded, x_cl)}
    runs = {name: (model.to(device, memory_format=torch.channels_last if data is x_cl
                            else torch.contiguous_format), data.to(device))
            for name, (model, data) in runs.items()}
    autocast = (torch.autocast(device.type, dtype=getattr(torch, args.amp))
                if args.amp else nullcontext())
    times = {k: [] for k in runs}
    with torch.inference_mode(), autocast:
        expected = runs["torchvision eval"][0](runs["torchvision eval"][1]).float()
        got = runs["resdsl fold_bn=True"][0](runs["resdsl fold_bn=True"][1]).float()
        error = ((got - expected).abs().max() / expected.abs().max()).item()
        for _ in range(args.warmup):
            for model, data in runs.values():
                model(data)
        for i in range(args.rounds):
            order = list(runs.items()) if i % 2 == 0 else list(runs.items())[::-1]
            for name, (model, data) in order:
                sync(device)
                start = time.perf_counter()
                model(data)
                sync(device)
                times[name].append(time.perf_counter() - start)
        profiles = ([] if not args.profile else
                    profile("resdsl eval (unfolded), channels_last", *runs[
                        "resdsl eval (unfolded), channels_last"], device)
                    + profile("resdsl fold_bn=True", *runs["resdsl fold_bn=True"], device))
    base = statistics.median(times["torchvision eval"])
    unfolded_time = statistics.median(times["resdsl eval (unfolded), channels_last"])
    rows = [f"| ResNet-50, batch {args.infer_batch}, 224x224 | median (s) | images/s | "
            "speed-up over torchvision eval |", "|---|---:|---:|---:|"]
    for name, samples in times.items():
        median = statistics.median(samples)
        rows.append(f"| {name} | {median:.4f} | {args.infer_batch / median:,.1f} | "
                    f"{base / median:.2f}x |")
    folded_time = statistics.median(times["resdsl fold_bn=True"])
    return rows + ["", f"Folding alone (the same network and layout, unfolded / folded): "
                       f"**{unfolded_time / folded_time:.2f}x**. Largest difference between "
                       f"resdsl's folded outputs and torchvision's eval outputs: {error:.1e} "
                       "of the largest logit.", *profiles]


def profile(name: str, model, data, device, top: int = 8) -> list[str]:
    """The ops that take the most time in three forward passes, by their own time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(3):
            model(data)
        sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    ops = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:top]
    total = sum(getattr(e, key) for e in prof.key_averages())
    return ["", f"Where {name} spends its time (self time, 3 passes):", "",
            "| op | calls | ms | share |", "|---|---:|---:|---:|"] + [
        f"| `{e.key}` | {e.count} | {getattr(e, key) / 1e3:.2f} | "
        f"{100 * getattr(e, key) / total:.1f}% |" for e in ops]


def section_name(args) -> str:
    name = "bench_torch" if args.device == "cpu" else "bench_torch_gpu"
    return name + ("_family" if args.family else "")


def report(args) -> str:
    where = (torch.cuda.get_device_name() if args.device.startswith("cuda")
             else f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    settings = ", ".join(s for s in [args.amp and f"{args.amp} autocast",
                                     args.channels_last and "channels_last",
                                     args.compile and "torch.compile"] if s) or "fp32, eager"
    name = section_name(args)
    lines = [f"<!-- {name}:start -->",
             f"## PyTorch backend on {args.device}: resdsl vs torchvision ({settings})", "",
             f"Command: `python3 benchmarks/bench_torch.py {' '.join(sys.argv[1:])}` "
             f"({time.strftime('%Y-%m-%d')}; {where}, Python {platform.python_version()}, "
             f"torch {torch.__version__}, torchvision {torchvision.__version__}).", ""]
    if args.family:
        lines[1] = lines[1].replace("vs torchvision", "the family vs torchvision and timm")
        lines += [f"{args.pairs} timed pairs of each after {args.warmup} warm-up runs; the "
                  "order within a pair alternates. A ratio below 1: resdsl is faster.", "",
                  *family(args), "", f"<!-- {name}:end -->"]
        return "\n".join(lines)
    if args.only in (None, "train"):
        lines += ["### Training step (forward, backward, SGD)", "",
                  f"{args.pairs} timed pairs after {args.warmup} warm-up steps each; "
                  "the order within a pair alternates.", "", *training(args), ""]
    if args.only in (None, "infer"):
        lines += ["### Inference with BN folded (`fold_bn=True`)", "",
                  f"{args.rounds} rounds in alternating order, under `torch.inference_mode`. "
                  "The folded module runs channels_last (its inference layout); torchvision's "
                  "eval and resdsl's unfolded module run channels_last too, for a "
                  "like-for-like view.", "",
                  *inference(args), ""]
    lines.append(f"<!-- {name}:end -->")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("bfloat16", "float16"), help="autocast dtype")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--only", choices=("train", "infer"))
    parser.add_argument("--family", action="store_true",
                        help="the ResNet family (ResNeXt, Wide ResNet, ResNet-D, SE, v2) "
                             "against torchvision's and timm's models")
    parser.add_argument("--pairs", type=int, default=12, help="timed training pairs")
    parser.add_argument("--rounds", type=int, default=15, help="timed inference rounds")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--infer-batch", type=int, default=8, help="inference batch (8)")
    parser.add_argument("--profile", action="store_true",
                        help="also show where folded and unfolded inference spend their time")
    args = parser.parse_args()
    text = report(args)
    print(text)
    if args.write:
        write_section(section_name(args), text)


if __name__ == "__main__":
    main()
