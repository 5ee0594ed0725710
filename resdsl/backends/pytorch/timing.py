"""The torch side of `resdsl latency`: this machine's CPU measured (a matmul for its
FLOP/s, a copy for its memory bandwidth), so that the roofline has peaks to divide by
where no datasheet applies, and the stages of the emitted module timed on a device, so
that the estimate faces a measurement. Plain numbers in and out: the roofline model
(`backends/latency.py`) stays free of torch and owns the meaning of the figures."""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from dataclasses import dataclass

import networkx as nx
import torch

from resdsl.backends.pytorch import memory
from resdsl.backends.pytorch.runtime import from_graph
from resdsl.errors import ResdslError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CALIBRATION_BUDGET_S = 0.15  # per figure, after one warm-up: a few hundred ms in all


@dataclass(frozen=True)
class Calibration:
    flops: float  # FLOP/s of the best matmul
    bandwidth: float  # bytes/s of the best copy (bytes read plus bytes written)
    how: str


@contextlib.contextmanager
def cpu_threads(threads: int | None):
    """torch's CPU threads set for the block, and put back after it. On a machine that
    other jobs share, fewer threads than cores can be many times faster: OpenMP's
    workers wait for one another at each op, and a descheduled one stalls them all."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def calibrate_cpu(precision: str = "fp32", threads: int | None = None, size: int = 1024,
                  copy_bytes: int = 64 * 2**20) -> Calibration:
    """This machine's CPU peaks, once per process, precision and thread count: the best
    of a few `size`-square matmuls (2 size^3 FLOPs each) and of a few copies of
    `copy_bytes`, far larger than a CPU's caches, so that it measures memory, not cache."""
    with cpu_threads(threads):
        return _calibrate(DTYPES[precision], precision, size, copy_bytes)


def _calibrate(dtype, precision: str, size: int, copy_bytes: int) -> Calibration:
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    source = torch.ones(copy_bytes // 4)
    target = torch.empty_like(source)
    matmul, runs = _best(lambda: torch.mm(a, b))
    copy, copies = _best(lambda: target.copy_(source))
    how = (f"this machine, measured: {size}x{size} {precision} matmul, best of {runs}; "
           f"copy of {copy_bytes // 2**20} MiB, best of {copies}; "
           f"{_threads()}")
    return Calibration(2 * size**3 / matmul, 2 * copy_bytes / copy, how)


def _threads() -> str:
    count = torch.get_num_threads()
    return f"{count} thread{'' if count == 1 else 's'}"


def _best(work) -> tuple[float, int]:
    """The shortest of at least three timed runs (after a warm-up) within the budget:
    a peak is what the machine can do, and noise only ever adds time."""
    work()
    samples: list[float] = []
    while len(samples) < 3 or (sum(samples) < CALIBRATION_BUDGET_S and len(samples) < 20):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return min(samples), len(samples)


def measure_device(title: str, gpu_marker: str | None) -> torch.device:
    """Where a measurement for the named device runs: the CPU, or this machine's GPU
    when it is the one named (an A100's estimate timed on an H100 would mean nothing)."""
    if gpu_marker is None:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = ("this torch was built without CUDA" if torch.version.cuda is None
               else "torch finds no NVIDIA GPU or driver")
        raise ResdslError(f"--measure on {title} needs that GPU, and CUDA is not available "
                          f"here ({why})", code="E704",
                          hint="leave out --measure for the estimate alone, or measure on "
                               "this machine with --device cpu")
    found = torch.cuda.get_device_name(0)
    if gpu_marker.lower() not in found.lower():
        raise ResdslError(f"--measure on {title} needs that GPU; this machine's is {found}",
                          code="E704", hint="leave out --measure for the estimate alone, "
                                            "or name the device this machine has")
    return torch.device("cuda", 0)


@dataclass(frozen=True)
class Measurement:
    stages: dict[str, float]  # a top-level module's median seconds, by name
    total: float  # the median whole forward pass, seconds
    how: str


def measure_stages(graph: nx.DiGraph, device: torch.device, batch: int,
                   precision: str = "fp32", repeats: int = 10, warmup: int = 3,
                   threads: int | None = None) -> Measurement:
    """Time each top-level module (each .arch stage) of the emitted module in eval mode:
    forward hooks mark its start and end (time.perf_counter on the CPU, CUDA events on a
    GPU), and each figure is the median over `repeats` forwards after `warmup`."""
    with cpu_threads(threads):
        return _measure(graph, device, batch, precision, repeats, warmup)


def _measure(graph: nx.DiGraph, device: torch.device, batch: int, precision: str,
             repeats: int, warmup: int) -> Measurement:
    memory.require(graph, device, batch)
    model = from_graph(graph).eval().to(device)
    shape = next(a["shape"] for _, a in graph.nodes(data=True) if a["op"] == "input")
    x = torch.randn(batch, *shape, device=device)
    cuda = device.type == "cuda"
    marks: dict[tuple[str, int], object] = {}

    def mark():
        if not cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed(start, end) -> float:
        return start.elapsed_time(end) * 1e-3 if cuda else end - start

    names = [name for name, _ in model.named_children()]
    hooks = []
    for name, child in model.named_children():
        hooks.append(child.register_forward_pre_hook(
            lambda _m, _i, name=name: marks.__setitem__((name, 0), mark())))
        hooks.append(child.register_forward_hook(
            lambda _m, _i, _o, name=name: marks.__setitem__((name, 1), mark())))
    autocast = (torch.autocast(device.type, dtype=DTYPES[precision]) if precision != "fp32"
                else contextlib.nullcontext())
    stage_samples: dict[str, list[float]] = {name: [] for name in names}
    totals: list[float] = []
    try:
        with torch.inference_mode(), autocast:
            for run in range(warmup + repeats):
                begin = mark()
                model(x)
                end = mark()
                if cuda:
                    torch.cuda.synchronize(device)
                if run < warmup:
                    continue
                totals.append(elapsed(begin, end))
                for name in names:
                    stage_samples[name].append(elapsed(marks[name, 0], marks[name, 1]))
    finally:
        for hook in hooks:
            hook.remove()
    clock = "CUDA events" if cuda else "time.perf_counter"
    where = f"cpu, {_threads()}" if not cuda else str(device)
    how = (f"median of {repeats} forwards after {warmup} warm-up, eval mode, on {where}; "
           f"each stage timed with forward hooks and {clock}")
    return Measurement({name: statistics.median(s) for name, s in stage_samples.items()},
                       statistics.median(totals), how)
