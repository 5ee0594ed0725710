"""What the benchmark scripts share: the hand-written CIFAR ResNet that a PyTorch user
would otherwise write, and how a script puts its section into BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import subprocess
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A CIFAR ResNet as a PyTorch user writes it (sec. 4.2, option A); source text, so that a
# benchmark can run it in a fresh process or exec it in its own.
CIFAR_TORCH = textwrap.dedent("""
    import torch, torch.nn as nn, torch.nn.functional as F
    class Block(nn.Module):
        def __init__(s, cin, cout, stride):
            super().__init__()
            s.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.bn1 = nn.BatchNorm2d(cout)
            s.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(cout)
            s.stride, s.pad = stride, cout - cin
        def forward(s, x):
            out = F.relu(s.bn1(s.conv1(x)))
            out = s.bn2(s.conv2(out))
            identity = x[:, :, ::s.stride, ::s.stride]
            if s.pad:
                identity = F.pad(identity, (0, 0, 0, 0, 0, s.pad))
            return F.relu(out + identity)
    def cifar_resnet(n):
        layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(Block(cin, cout, stride if i == 0 else 1)); cin = cout
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
""")


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of one whole process, and its stdout.

    Linux carries a process's peak RSS across exec, so a child would inherit this
    process's own peak: this script therefore imports nothing heavy itself, and runs
    even its in-process timings in a child."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024, out


def print_report(name: str, doc: str, report) -> None:
    """The command line of a benchmark that takes no options but `--write`: print
    `report()`, and with `--write` put it into BENCHMARKS.md as section `name`."""

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    text = report()
    print(text)
    if args.write:
        write_section(name, text)


def write_section(name: str, text: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace the section between `<!-- name:start -->` and `<!-- name:end -->` in
    `path` (the text carries both markers), or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in old:
        new = old[:old.index(start)] + text + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def sync(device) -> None:
    """Wait for the work a GPU has queued, so that a timer reads the work done; a CPU
    runs each op to the end before the next."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)
