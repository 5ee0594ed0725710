"""`resdsl latency`: how long one forward pass should take on a device, from the IR alone.

The roofline model: a layer takes the longer of its arithmetic at the device's peak
(2 x MACs x batch / FLOP/s) and its memory traffic at the device's bandwidth (inputs
read, output written and weights read, at the precision's element size); ops without
multiply-adds (BN, ReLU, add, pooling) are bound by bandwidth alone. A stage is the sum
of its layers. The named GPUs' peaks are their datasheets'; `cpu` is measured on this
machine, and `measure=True` times each stage of the emitted module beside the estimate
(both in backends/pytorch/timing.py, imported only then: a GPU's estimate needs no torch).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from html import escape

import networkx as nx

from resdsl.backends.table import align
from resdsl.errors import ResdslError, did_you_mean
from resdsl.ops.registry import op
from resdsl.ops.shapes import format_shape, spatial
from resdsl.passes.pipeline import build

ELEMENT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}  # activations and weights alike
T, G = 1e12, 1e9
TF32_NOTE = "fp32 convolutions run on TF32 tensor cores, cuDNN's default in torch"


@dataclass(frozen=True)
class Device:
    """A device's dense peaks (no sparsity) and memory bandwidth, with their source."""

    name: str
    title: str
    fp32: float  # FLOP/s for fp32 work: TF32 tensor cores where cuDNN uses them
    half: float  # FLOP/s of bf16/fp16 tensor cores
    bandwidth: float  # bytes/s
    source: str
    gpu_marker: str | None = None  # what torch.cuda.get_device_name says of it
    fp32_note: str = ""

    def peak(self, precision: str) -> float:
        return self.fp32 if precision == "fp32" else self.half


# Published dense peaks: NVIDIA's datasheets print tensor-core figures with 2:4 sparsity
# (marked *), which are halved here. Bandwidth is the datasheet's, 10^9 bytes a GB.
DEVICES = {d.name: d for d in (
    # NVIDIA H100 Tensor Core GPU datasheet (H100 SXM): TF32 989* TFLOPS, BF16/FP16
    # 1,979* TFLOPS, FP32 67 TFLOPS, GPU memory bandwidth 3.35 TB/s.
    Device("h100", "NVIDIA H100 SXM", 494.5 * T, 989.5 * T, 3.35e12,
           "NVIDIA H100 datasheet, SXM", "H100", TF32_NOTE),
    # NVIDIA H200 Tensor Core GPU datasheet (H200 SXM): the H100's compute, 4.8 TB/s.
    Device("h200", "NVIDIA H200 SXM", 494.5 * T, 989.5 * T, 4.8e12,
           "NVIDIA H200 datasheet, SXM", "H200", TF32_NOTE),
    # NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM): TF32 156 TFLOPS, BF16/FP16
    # 312 TFLOPS, FP32 19.5 TFLOPS, 2,039 GB/s.
    Device("a100", "NVIDIA A100 80GB SXM", 156 * T, 312 * T, 2.039e12,
           "NVIDIA A100 datasheet, 80GB SXM", "A100", TF32_NOTE),
    # NVIDIA L4 Tensor Core GPU datasheet: TF32 120* TFLOPS, BF16/FP16 242* TFLOPS,
    # FP32 30.3 TFLOPS, 300 GB/s.
    Device("l4", "NVIDIA L4", 60 * T, 121 * T, 300e9, "NVIDIA L4 datasheet", "L4",
           TF32_NOTE),
    # NVIDIA Ada GPU Architecture whitepaper, appendix A (GeForce RTX 4090): TF32 tensor
    # 82.6 TFLOPS, BF16/FP16 tensor with FP32 accumulate 165.2 TFLOPS, 1,008 GB/s.
    Device("rtx4090", "NVIDIA GeForce RTX 4090", 82.6 * T, 165.2 * T, 1.008e12,
           "NVIDIA Ada GPU architecture whitepaper", "4090", TF32_NOTE),
)}
KNOWN = ("cpu", *DEVICES)


def find_device(name: str) -> Device | None:
    """The named GPU's entry, None for `cpu` (measured, not looked up), or E704."""
    spelling = str(name).strip().lower()
    if spelling == "cpu":
        return None
    if spelling not in DEVICES:
        close = did_you_mean(spelling, KNOWN)
        raise ResdslError(f"unknown device '{name}'; the known devices are {', '.join(KNOWN)}",
                          hint=close or "cpu is this machine, measured; the others are "
                                        "GPUs by their datasheets' peaks", code="E704")
    return DEVICES[spelling]


@dataclass
class LayerEstimate:
    node: str
    op: str
    stage: str
    flops: int  # 2 x MACs x batch
    bytes: int  # moved for the whole batch
    compute_seconds: float
    memory_seconds: float

    @property
    def seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds > self.memory_seconds else "memory"


@dataclass
class StageEstimate:
    name: str
    output: list[int]
    flops: int = 0
    bytes: int = 0
    seconds: float = 0.0
    compute_bound_seconds: float = 0.0  # the share of `seconds` in compute-bound layers
    measured_seconds: float | None = None

    @property
    def bound(self) -> str:
        return "compute" if 2 * self.compute_bound_seconds > self.seconds else "memory"

    @property
    def bound_share(self) -> float:
        part = self.compute_bound_seconds if self.bound == "compute" else \
            self.seconds - self.compute_bound_seconds
        return part / self.seconds if self.seconds else 1.0

    @property
    def ratio(self) -> float | None:
        """Measured over estimated: how far the module is from the roofline."""
        if self.measured_seconds is None or not self.seconds:
            return None
        return self.measured_seconds / self.seconds


@dataclass
class LatencyReport:
    network: str
    file: str
    device: str
    device_title: str
    peak_flops: float
    bandwidth: float
    device_how: str  # the datasheet, or how this machine was measured
    precision: str
    batch: int
    stages: list[StageEstimate]
    layers: list[LayerEstimate] = field(repr=False)
    measured_seconds: float | None = None  # the whole forward pass, timed
    measured_how: str | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def ratio(self) -> float | None:
        return None if self.measured_seconds is None else self.measured_seconds / self.seconds

    def to_dict(self) -> dict:
        """Seconds, bytes, FLOPs and FLOP/s, for the whole batch."""
        stages = [{**asdict(s), "bound": s.bound, "ratio": s.ratio} for s in self.stages]
        layers = [{**asdict(a), "seconds": a.seconds, "bound": a.bound} for a in self.layers]
        head = {k: v for k, v in asdict(self).items() if k not in ("stages", "layers")}
        return {**head, "seconds": self.seconds, "flops": sum(s.flops for s in self.stages),
                "bytes": sum(s.bytes for s in self.stages), "ratio": self.ratio,
                "stages": stages, "layers": layers}

    def format(self, show_layers: bool = False) -> str:
        return "\n".join([*self._preamble(), "", *align(self._rows(show_layers))])

    def _repr_html_(self) -> str:
        """The stage table, when a notebook shows a report."""
        rows = self._rows(False)
        cells = lambda row, tag: "".join(  # noqa: E731
            f'<{tag} style="text-align:{"left" if i == 0 else "right"}">{escape(c)}</{tag}>'
            for i, c in enumerate(row))
        body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows[1:])
        notes = "<br>".join(escape(line) for line in self._preamble()[1:])
        return (f"<table><caption>{escape(self._preamble()[0])}</caption><thead><tr>"
                f"{cells(rows[0], 'th')}</tr></thead><tbody>{body}</tbody></table>"
                f"<p><small>{notes}</small></p>")

    def _preamble(self) -> list[str]:
        lines = [f"{self.network} ({self.file}): batch {self.batch}, {self.precision}, "
                 f"on {self.device}",
                 f"{self.device_title}: peak {_rate(self.peak_flops)} "
                 f"{self.precision}, {_figure(self.bandwidth / G)} GB/s ({self.device_how})",
                 "roofline: a layer takes the longer of 2 x MACs x batch / peak and bytes "
                 "moved / bandwidth; bytes moved: inputs read, output written and weights "
                 f"read, {ELEMENT_BYTES[self.precision]} bytes an element"]
        if self.measured_how:
            lines.append(f"measured: {self.measured_how}; ratio: measured / estimate")
        return lines

    def _rows(self, show_layers: bool) -> list[list[str]]:
        figures = [self.seconds, *(s.measured_seconds or 0 for s in self.stages),
                   self.measured_seconds or 0]
        unit, scale = ("ms", 1e3) if max(figures) >= 0.01 else ("µs", 1e6)
        work, per = ("GFLOPs", G) if sum(s.flops for s in self.stages) >= G else ("MFLOPs", 1e6)
        time = lambda s: "-" if s is None else _figure(s * scale)  # noqa: E731
        ratio = lambda r: "-" if r is None else f"{r:,.2f}"  # noqa: E731
        measured = self.measured_how is not None
        rows = [["stage", "output", work, "MB moved", f"estimate({unit})", "bound"]
                + ([f"measured({unit})", "ratio"] if measured else [])]
        for s in self.stages:
            rows.append([s.name, format_shape(spatial(s.output)), f"{s.flops / per:,.2f}",
                         f"{s.bytes / 1e6:,.2f}", time(s.seconds),
                         f"{s.bound} {s.bound_share:.0%}"]
                        + ([time(s.measured_seconds), ratio(s.ratio)] if measured else []))
            if show_layers:
                rows += [[f"  {a.node}", "", f"{a.flops / per:,.2f}", f"{a.bytes / 1e6:,.2f}",
                          time(a.seconds), a.bound] + (["", ""] if measured else [])
                         for a in self.layers if a.stage == s.name]
        rows.append(["total", "", f"{sum(s.flops for s in self.stages) / per:,.2f}",
                     f"{sum(s.bytes for s in self.stages) / 1e6:,.2f}", time(self.seconds), ""]
                    + ([time(self.measured_seconds), ratio(self.ratio)] if measured else []))
        return rows


def _rate(flops: float) -> str:
    return f"{_figure(flops / T)} TFLOP/s" if flops >= T else f"{_figure(flops / G)} GFLOP/s"


def _figure(value: float) -> str:
    """Three significant figures or more, never an exponent: 0.123, 12.3, 1,234."""
    return f"{value:,.{0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3}f}"


def estimate(graph: nx.DiGraph, device: Device, batch: int = 1,
             precision: str = "fp32") -> LatencyReport:
    """The roofline estimate of one forward pass of `batch` images on `device`, per
    layer and per stage. A softmax that the module leaves to the loss is not counted."""
    element, peak = ELEMENT_BYTES[precision], device.peak(precision)
    stages = {s.name: StageEstimate(s.name, []) for s in graph.graph["stages"]}
    layers = []
    for node in nx.topological_sort(graph):
        a = graph.nodes[node]
        if a["op"] in ("input", "output") or (op(a["op"]).left_to_loss
                                              and graph.has_edge(node, "output")):
            continue
        read = sum(math.prod(graph.nodes[p]["shape"]) for p in graph.predecessors(node))
        moved = element * (batch * (read + math.prod(a["shape"])) + a["params"])
        flops = 2 * a["macs"] * batch
        layer = LayerEstimate(node, a["op"], a["stage"], flops, moved, flops / peak,
                              moved / device.bandwidth)
        layers.append(layer)
        stage = stages[a["stage"]]
        stage.output = list(a["shape"])
        stage.flops += flops
        stage.bytes += moved
        stage.seconds += layer.seconds
        stage.compute_bound_seconds += layer.seconds if layer.bound == "compute" else 0.0
    how = device.source + (f"; {device.fp32_note}" if precision == "fp32" and device.fp32_note
                           else "")
    return LatencyReport(graph.graph["name"], graph.graph["file"], device.name, device.title,
                         peak, device.bandwidth, how, precision, batch,
                         [s for s in stages.values() if s.output], layers)


def latency_of(graph: nx.DiGraph, device: str = "cpu", batch: int = 1, amp: str | None = None,
               measure: bool = False, repeats: int = 10,
               threads: int | None = None) -> LatencyReport:
    """The estimate for a built graph, and with `measure` each stage of its module timed
    on that device (the CPU, or this machine's GPU when it is the one named). `threads`:
    torch's CPU threads for the calibration and the measurement (default: torch's)."""
    precision = amp or "fp32"
    if precision not in ELEMENT_BYTES:
        raise ValueError(f"amp must be bf16 or fp16 (or None for fp32), not {amp!r}")
    if batch < 1 or repeats < 1:
        raise ValueError(f"batch and repeats must be positive, not {batch} and {repeats}")
    named = find_device(device)
    if named is not None and not measure:
        return estimate(graph, named, batch, precision)
    from resdsl.backends.pytorch import timing

    where = timing.measure_device(named.title if named else "cpu",
                                  named.gpu_marker if named else None) if measure else None
    if named is None:
        calibration = timing.calibrate_cpu(precision, threads)
        named = Device("cpu", "cpu", calibration.flops, calibration.flops,
                       calibration.bandwidth, calibration.how)
    report = estimate(graph, named, batch, precision)
    if measure:
        measured = timing.measure_stages(graph, where, batch, precision, repeats, 3, threads)
        for stage in report.stages:
            stage.measured_seconds = measured.stages.get(stage.name)
        report.measured_seconds, report.measured_how = measured.total, measured.how
    return report


def latency(path: str, *, device: str = "cpu", batch: int = 1, amp: str | None = None,
            measure: bool = False, repeats: int = 10, threads: int | None = None,
            **params) -> LatencyReport:
    """`resdsl latency` from Python: the roofline estimate of an .arch file's forward pass
    on a device (`cpu`, measured here, or a GPU of `DEVICES`), per layer and per stage;
    with `measure=True`, each stage of the emitted module timed beside it. `params`
    override parameters and settings as `--set` does."""
    return latency_of(build(path, **params), device, batch, amp, measure, repeats, threads)
