"""How long `resdsl render` takes, as whole processes: the largest figures a user draws
(ResNet-152 expanded, ResNet-1202 collapsed), Figure 3, and ResNet-1202 expanded for
scale. Median wall time and peak memory of 5 runs, each writing an SVG with graphviz.

    python3 benchmarks/bench_render.py            # prints the report
    python3 benchmarks/bench_render.py --write    # and puts it into BENCHMARKS.md
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import print_report, run

CASES = [  # label, arguments to `resdsl render`
    ("Figure 3 (VGG-19, plain-34, ResNet-34)", []),
    ("ResNet-152, expanded", ["archs/resnet152.arch"]),
    ("ResNet-1202, collapsed", ["archs/cifar-resnet.arch", "--set", "n=200", "--collapse"]),
    ("ResNet-1202, expanded", ["archs/cifar-resnet.arch", "--set", "n=200"]),
]
REPEATS = 5


def report() -> str:
    dot = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
    rows = ["| figure | wall (s, median of 5) | peak memory (MB) | SVG size (KB) |",
            "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "figure.svg"
        for label, args in CASES:
            cmd = [sys.executable, "-m", "resdsl", "render", *args, "-o", str(target)]
            samples = [run(cmd) for _ in range(REPEATS)]
            wall = statistics.median(s[0] for s in samples)
            memory = statistics.median(s[1] for s in samples)
            rows.append(f"| {label} | {wall:.2f} | {memory:.0f} | "
                        f"{target.stat().st_size / 1024:,.0f} |")
    return "\n".join([
        "<!-- bench_render:start -->",
        "## Rendering",
        "",
        f"Command: `python3 benchmarks/bench_render.py --write` ({time.strftime('%Y-%m-%d')}; "
        f"Python {platform.python_version()}, {dot}).",
        "",
        "Whole processes (`resdsl render ... -o figure.svg`): parsing, the passes, the "
        "layout and graphviz's `dot`. Peak memory is the largest resident set that `wait4` "
        "reports for the process and the `dot` it waits for.",
        "",
        *rows,
        "<!-- bench_render:end -->",
    ])


if __name__ == "__main__":
    print_report("bench_render", __doc__, report)
