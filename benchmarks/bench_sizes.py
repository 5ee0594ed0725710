"""`resdsl flops --sizes` against what a user would otherwise run: one process per size
(`resdsl flops FILE --set input=CxHxW`, eight times), and fvcore and ptflops counting the
PyTorch model at each size in one process, where they are installed. Whole processes,
interleaved A B C A B C, median wall time and peak resident memory of each.

    python3 benchmarks/bench_sizes.py            # prints the report
    python3 benchmarks/bench_sizes.py --write    # and puts it into BENCHMARKS.md

The peers need `pip install -e '.[bench]'` (torchvision, fvcore, ptflops); without them
only the two ways of running resdsl are compared.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time

from common import print_report, run

PY = sys.executable
REPEATS = 5
SIZES = (128, 160, 192, 224, 256, 320, 384, 448)
ARCH = "archs/resnet152-v1.5.arch"  # torchvision's ResNet-152 is v1.5, as the peers count it
MODEL = "import torch, torchvision\nmodel = torchvision.models.resnet152().eval()\n"
PEER = {
    "fvcore": ("from fvcore.nn import FlopCountAnalysis\n"
               "for n in sizes:\n"
               "    print(int(FlopCountAnalysis(model, torch.randn(1, 3, n, n))"
               ".unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()))\n"),
    "ptflops": ("from ptflops import get_model_complexity_info\n"
                "for n in sizes:\n"
                "    print(int(get_model_complexity_info(model, (3, n, n), as_strings=False,"
                " print_per_layer_stat=False, verbose=False)[0]))\n"),
}


def _installed(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}, torchvision"],
                          capture_output=True).returncode == 0


def side_by_side() -> list[str]:
    sizes = ",".join(map(str, SIZES))
    ways = {"`resdsl flops --sizes`, one process": [
        [PY, "-m", "resdsl", "flops", ARCH, "--sizes", sizes]]}
    ways["`resdsl flops --set input=`, a process per size"] = [
        [PY, "-m", "resdsl", "flops", ARCH, "--set", f"input=3x{n}x{n}"] for n in SIZES]
    for tool, code in PEER.items():
        if _installed(tool):
            ways[f"{tool} on torchvision's model, one process"] = [
                [PY, "-c", MODEL + f"sizes = {SIZES!r}\n" + code]]
    times = {way: [] for way in ways}
    memory = {way: 0.0 for way in ways}
    for _ in range(REPEATS):  # interleaved: A B C A B C ...
        for way, commands in ways.items():
            results = [run(cmd) for cmd in commands]
            times[way].append(sum(wall for wall, _, _ in results))
            memory[way] = max(memory[way], *(rss for _, rss, _ in results))
    ours = statistics.median(times[next(iter(ways))])
    rows = [f"| how | wall for {len(SIZES)} sizes (s, median of {REPEATS}) | "
            "peak memory (MB) | `--sizes` faster by |", "|---|---:|---:|---:|"]
    for index, way in enumerate(ways):
        median = statistics.median(times[way])
        rows.append(f"| {way} | {median:.2f} | {memory[way]:.0f} | "
                    f"{'' if index == 0 else f'{median / ours:.1f}x'} |")
    missing = [tool for tool in PEER if not any(way.startswith(tool) for way in ways)]
    if missing:
        rows += ["", f"Not installed here, so not compared: {', '.join(missing)}."]
    return rows


def report() -> str:
    lines = [
        "<!-- bench_sizes:start -->",
        "## Counting at several input sizes",
        "",
        f"Command: `python3 benchmarks/bench_sizes.py --write` ({time.strftime('%Y-%m-%d')}; "
        f"{os.cpu_count()} cores, Python {platform.python_version()}).",
        "",
        f"ResNet-152 (`{ARCH}`) at {', '.join(map(str, SIZES))} pixels square. Whole "
        "processes, interleaved; a row that takes a process per size adds their times.",
        "",
        *side_by_side(),
        "<!-- bench_sizes:end -->",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print_report("bench_sizes", __doc__, report)
