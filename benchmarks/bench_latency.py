"""How close `resdsl latency`'s roofline estimate comes to the module it describes: every
bundled network on this machine's CPU, estimated and measured (`--measure`) stage by
stage; per network the range of measured / estimate over its stages and the Spearman
rank correlation of the stages' estimates with their measurements, then both over every
stage of every network.

    python3 benchmarks/bench_latency.py            # prints the report
    python3 benchmarks/bench_latency.py --write    # and puts it into BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from common import write_section

import resdsl
from resdsl.bundled import bundled_archs


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(a: list[float], b: list[float]) -> float:
    """Pearson's correlation of the ranks (so ties are handled)."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    spread = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / spread if spread else float("nan")


def measure(batch: int, repeats: int, threads: int | None):
    reports = []
    for name, path in bundled_archs().items():
        reports.append(resdsl.latency(str(path), device="cpu", batch=batch, measure=True,
                                      repeats=repeats, threads=threads))
        print(f"  {name}: done", flush=True)
    return reports


def report(batch: int, repeats: int, threads: int | None) -> str:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    reports = measure(batch, repeats, threads)
    minutes = (time.perf_counter() - started) / 60
    rows = ["| network | stages | estimate (ms) | measured (ms) | measured / estimate | "
            "per-stage ratio range | Spearman over stages |", "|---|---:|---:|---:|---:|---:|---:|"]
    every_estimate, every_measured, every_ratio, rhos = [], [], [], []
    for r in reports:
        ratios = [s.ratio for s in r.stages]
        rho = spearman([s.seconds for s in r.stages], [s.measured_seconds for s in r.stages])
        rhos.append(rho)
        every_estimate += [s.seconds for s in r.stages]
        every_measured += [s.measured_seconds for s in r.stages]
        every_ratio += ratios
        rows.append(f"| {r.network} | {len(r.stages)} | {r.seconds * 1e3:.2f} | "
                    f"{r.measured_seconds * 1e3:.2f} | {r.ratio:.2f} | "
                    f"{min(ratios):.2f} to {max(ratios):.2f} | {rho:.2f} |")
    head = reports[0]
    totals = [r.ratio for r in reports]
    body = [s for r in reports for s in r.stages if s.seconds >= 1e-3]
    lines = [
        "<!-- bench_latency:start -->",
        "## Latency: the roofline estimate against the module, on cpu",
        "",
        f"Command: `python3 benchmarks/bench_latency.py --batch {batch} --repeats {repeats}"
        f"{f' --threads {threads}' if threads else ''} --write` ({time.strftime('%Y-%m-%d')}; "
        f"{os.cpu_count()} cores, shared with other jobs: load average {load:.1f} at the "
        f"start; Python {platform.python_version()}, torch {_torch_version()}; "
        f"{minutes:.1f} minutes).",
        "",
        f"Each of the {len(reports)} bundled networks at batch {batch}, fp32, eval mode: "
        "`resdsl.latency(path, device='cpu', measure=True)`, the estimate against the peaks "
        f"this machine measured ({head.peak_flops / 1e9:.1f} GFLOP/s from a 1024x1024 "
        f"matmul, {head.bandwidth / 1e9:.2f} GB/s from a 64 MiB copy; {head.device_how}), "
        f"and each stage measured as the median of {repeats} forwards after 3 warm-up. "
        "The ratio is measured / estimate: above 1, the module is slower than the roofline.",
        "",
        f"- Per-stage ratio over all {len(every_ratio)} stages: {min(every_ratio):.2f} to "
        f"{max(every_ratio):.2f} (median {statistics.median(every_ratio):.2f}); over the "
        f"{len(body)} stages estimated at 1 ms or more: {min(s.ratio for s in body):.2f} to "
        f"{max(s.ratio for s in body):.2f}. The highest ratios are stages of microseconds of "
        "work (a head's pool and fc, VGG's lone pool5), where eager PyTorch's fixed cost per "
        "op, which no roofline holds, is most of the time; below 1, the module ran faster "
        "than the peaks this machine showed in its calibration, under a load that varies.",
        f"- Whole forward pass, measured / estimate: {min(totals):.2f} to {max(totals):.2f} "
        f"(median {statistics.median(totals):.2f}).",
        f"- Spearman rank correlation of estimate with measurement over the stages of each "
        f"network: {min(rhos):.2f} to {max(rhos):.2f} (median {statistics.median(rhos):.2f}); "
        f"over all {len(every_ratio)} stages together: "
        f"{spearman(every_estimate, every_measured):.2f}.",
        *_threads_note(threads),
        "",
        *rows,
        "",
        "No GPU was lent to the session that wrote this section, so there are no GPU "
        "figures yet: `resdsl latency FILE --device h100 --measure` on such a machine gives "
        "them.",
        "<!-- bench_latency:end -->",
    ]
    return "\n".join(lines)


def _threads_note(threads: int | None) -> list[str]:
    """Why --threads: the same small network timed at torch's default thread count."""
    import torch

    default = torch.get_num_threads()
    if not threads or threads == default:
        return []
    times = [resdsl.latency("cifar-resnet", batch=1, measure=True, repeats=3,
                            threads=t).measured_seconds for t in (default, threads)]
    return ["", f"At `--threads {threads}`: on this shared machine torch's default of {default} "
            f"threads runs cifar-resnet's forward pass in {times[0] * 1e3:.1f} ms against "
            f"{times[1] * 1e3:.1f} ms at {threads}, measured in the same run (OpenMP's workers "
            "wait for one another at every op, and one descheduled stalls all)."]


def _torch_version() -> str:
    import torch

    return torch.__version__


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's CPU threads (default: torch's own)")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    text = report(args.batch, args.repeats, args.threads)
    print(text)
    if args.write:
        write_section("bench_latency", text)
