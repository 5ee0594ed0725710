"""Side by side, in one run: counting a network with resdsl vs what a user would otherwise
use (fvcore and ptflops on a PyTorch model). Whole processes, interleaved A B C A B C,
median wall time and peak resident memory of each; then resdsl's cost per block on
synthetic networks of 100, 1,000 and 10,000 blocks; then where resdsl's start-up goes.

    python3 benchmarks/bench_flops.py            # prints the report
    python3 benchmarks/bench_flops.py --write    # and puts it into BENCHMARKS.md

Needs `pip install -e '.[test,bench]'` (torchvision, fvcore, ptflops).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import CIFAR_TORCH, print_report, run

PY = sys.executable
REPEATS = 5

PEER = {
    "fvcore": ("from fvcore.nn import FlopCountAnalysis\n"
               "macs = FlopCountAnalysis(model, torch.randn(1, *shape))"
               ".unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()\n"),
    "ptflops": ("from ptflops import get_model_complexity_info\n"
                "macs, _ = get_model_complexity_info(model, shape, as_strings=False,"
                " print_per_layer_stat=False, verbose=False)\n"),
}
MODELS = {
    "ResNet-152": ("import torch, torchvision\nmodel = torchvision.models.resnet152().eval()\n"
                   "shape = (3, 224, 224)\n", ["archs/resnet152-v1.5.arch"]),
    "ResNet-1202": (CIFAR_TORCH + "model = cifar_resnet(200).eval()\nshape = (3, 32, 32)\n",
                    ["archs/cifar-resnet.arch", "--set", "n=200"]),
}


def side_by_side() -> list[str]:
    rows = ["| network | tool | count it reports | wall (s, median of 5) | peak memory (MB) | resdsl faster by |",
            "|---|---|---:|---:|---:|---:|"]
    for name, (build, arch_args) in MODELS.items():
        commands = {"resdsl": [PY, "-m", "resdsl", "flops", "--json", *arch_args]}
        for tool, count in PEER.items():
            commands[tool] = [PY, "-c", build + count + "print(int(macs))"]
        times = {tool: [] for tool in commands}
        memory, reported = {}, {}
        for _ in range(REPEATS):  # interleaved: A B C A B C ...
            for tool, cmd in commands.items():
                wall, rss, out = run(cmd)
                times[tool].append(wall)
                memory[tool] = max(memory.get(tool, 0), rss)
                reported[tool] = out
        ours = statistics.median(times["resdsl"])
        for tool in commands:
            median = statistics.median(times[tool])
            if tool == "resdsl":
                figure = f"{json.loads(reported[tool])['macs']:,} MACs"
            else:
                figure = f"{int(reported[tool].split()[-1]):,}"
            rows.append(f"| {name} | {tool} | {figure} | {median:.2f} | {memory[tool]:.0f} | "
                        f"{'' if tool == 'resdsl' else f'{median / ours:.1f}x'} |")
    return rows


BUILD_TIMES = textwrap.dedent("""
    import statistics, sys, time
    from resdsl import build, limits
    path, blocks = sys.argv[1], int(sys.argv[2])
    samples = []
    for _ in range(3):
        start = time.perf_counter()
        with limits(layers=10**6):  # 10,000 blocks are 20,001 layers, past the default
            graph = build(path, blocks=blocks)
        samples.append(time.perf_counter() - start)
    print(graph.number_of_nodes(), statistics.median(samples))
""")


def scaling() -> list[str]:
    rows = ["| blocks | IR nodes | build, in process (s) | per block (us) | whole process (s) |",
            "|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.arch"
        path.write_text("network synthetic\nparam blocks = 1\ninput 16x32x32\nshortcut A\n"
                        "body : [3x3, 16; 3x3, 16] x blocks\nhead : avgpool, fc 10\n")
        for blocks in (100, 1_000, 10_000):
            nodes, seconds = run([PY, "-c", BUILD_TIMES, str(path), str(blocks)])[2].split()
            seconds = float(seconds)
            wall = statistics.median(run([PY, "-m", "resdsl", "flops", str(path), "--set",
                                          f"blocks={blocks}", "--limit", "layers=1000000"])[0]
                                     for _ in range(3))
            rows.append(f"| {blocks:,} | {int(nodes):,} | {seconds:.3f} | "
                        f"{seconds / blocks * 1e6:.0f} | {wall:.2f} |")
    return rows


def startup() -> list[str]:
    steps = [("Python interpreter (`python -c pass`)", "pass"),
             ("`import networkx`", "import networkx"),
             ("`import lark`", "import lark"),
             ("`import resdsl` (networkx, lark and resdsl's own modules)", "import resdsl"),
             ("`resdsl flops archs/resnet152.arch`, whole", None)]
    rows = ["| what | wall (s, median of 9) |", "|---|---:|"]
    for label, code in steps:
        cmd = [PY, "-c", code] if code else [PY, "-m", "resdsl", "flops", "archs/resnet152.arch"]
        rows.append(f"| {label} | {statistics.median(run(cmd)[0] for _ in range(9)):.3f} |")
    return rows


def report() -> str:
    versions = run([PY, "-c", "import torch, networkx, lark; "
                    "print(torch.__version__, networkx.__version__, lark.__version__)"])[2].split()
    lines = [
        "<!-- bench_flops:start -->",
        "## Counting: resdsl vs fvcore and ptflops",
        "",
        f"Command: `python3 benchmarks/bench_flops.py --write` ({time.strftime('%Y-%m-%d')}; "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, torch {versions[0]}, "
        f"networkx {versions[1]}, lark {versions[2]}).",
        "",
        "Whole processes, interleaved. resdsl counts the .arch file; the peers count the "
        "PyTorch model a user would otherwise build (torchvision's ResNet-152, the same "
        "v1.5 layout as `resnet152-v1.5.arch`; a hand-written CIFAR ResNet-1202). Each tool "
        "counts a different set of ops, so their figures differ: resdsl's is the paper's "
        "(conv and fc multiply-adds).",
        "",
        *side_by_side(),
        "",
        "### Cost per block",
        "",
        "Synthetic networks of N basic blocks (`[3x3, 16; 3x3, 16] x N`, option A).",
        "",
        *scaling(),
        "",
        "### Where the start-up goes",
        "",
        *startup(),
        "<!-- bench_flops:end -->",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print_report("bench_flops", __doc__, report)
