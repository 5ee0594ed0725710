"""Every command is linear in the file: time `flops`, `check` and `compile` on files that
double in size, and report the ratio between successive sizes (2.0 is linear, 4.0 is
quadratic). Two shapes of long file from the fuzzing campaign: many one-line stages, and
one conv followed by a long chain of `, relu`. Each run is a fresh process, as a user
runs it; the figure is the best of --repeat runs.

    python3 benchmarks/bench_scaling.py [--write] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_section

COMMANDS = (("flops",), ("check",), ("compile",))
LIMITS = ("--limit", "layers=1000000", "--limit", "file_size=16MiB")


def stages(count: int) -> str:
    body = "\n".join(f"s{i} : 1x1, 4" for i in range(count))
    return f"network stages\ninput 3x8x8\nshortcut none\n{body}\nhead : avgpool, fc 10\n"


def relus(count: int) -> str:
    chain = ", relu" * count
    return f"network relus\ninput 3x8x8\nshortcut none\nconv1 : 3x3, 4{chain}\nhead : avgpool, fc 10\n"


SHAPES = {"one-line stages": (stages, (2_375, 4_750, 9_500, 19_000)),
          "conv + relu chain": (relus, (21_250, 42_500, 85_000, 170_000))}


def seconds(command: tuple[str, ...], path: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "resdsl", command[0], str(path),
                                 *command[1:], *LIMITS], capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{command[0]} {path} failed:\n{result.stderr}")
    return best


def report(repeat: int) -> str:
    rows = ["| file | size | " + " | ".join(f"`{c[0]}` (s)" for c in COMMANDS) + " |",
            "|---|---:|" + "---:|" * len(COMMANDS)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, (make, counts) in SHAPES.items():
            previous = None
            for count in counts:
                path = Path(tmp) / f"{count}.arch"
                path.write_text(make(count))
                times = [seconds(c, path, repeat) for c in COMMANDS]
                ratios = ([f" (x{t / p:.2f})" for t, p in zip(times, previous)] if previous
                          else [""] * len(times))
                rows.append(f"| {label}, {count:,} | {path.stat().st_size / 1e3:,.0f} KB | "
                            + " | ".join(f"{t:.2f}{r}" for t, r in zip(times, ratios)) + " |")
                previous = times
    return "\n".join([
        "<!-- bench_scaling:start -->",
        "## Long files: time against file size",
        "",
        f"Command: `python3 benchmarks/bench_scaling.py {' '.join(sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores, Python "
        f"{platform.python_version()}).",
        "",
        f"Whole processes (start-up included, about 0.5 s), best of {repeat}; in brackets "
        "the ratio to the row above, for a file twice as long (2.0 is linear). The files "
        f"need `{' '.join(LIMITS)}`.",
        "",
        *rows,
        "<!-- bench_scaling:end -->",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    text = report(args.repeat)
    print(text)
    if args.write:
        write_section("bench_scaling", text)


if __name__ == "__main__":
    main()
