"""`resdsl compile --check`: build the module on a device, run one forward and backward
pass, and compare what torch saw with what the passes inferred."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from resdsl.backends.pytorch.devices import describe
from resdsl.backends.pytorch.plan import Plan
from resdsl.ops.shapes import format_shape
from resdsl.safety import format_bytes


@dataclass
class CheckReport:
    network: str
    device: str
    batch: int
    stage_shapes: list[tuple[str, tuple[int, ...]]]  # top-level module, output shape
    output_shape: tuple[int, ...]
    params: int
    static_params: int
    static_output: tuple[int, ...]
    seconds: float
    measured_memory: int  # bytes the model and one pass took, as `measured_how` says
    measured_how: str
    estimate: str  # resdsl's estimate from the IR, made before allocating

    @property
    def ok(self) -> bool:
        return (self.params == self.static_params
                and self.output_shape[1:] == self.static_output)

    def format(self) -> str:
        lines = [f"{self.network} on {self.device}, batch {self.batch}, float32"]
        lines += [f"  {name:<12} {format_shape(shape)}" for name, shape in self.stage_shapes]
        lines += [
            f"output       {format_shape(self.output_shape)} "
            f"(inferred {format_shape(self.static_output)} per image)",
            f"params       {self.params:,} (static count {self.static_params:,})",
            f"time         {self.seconds:.3f} s for one forward and backward pass",
            f"memory       estimated {self.estimate}, from the IR before allocating",
            f"             measured {format_bytes(self.measured_memory)}: {self.measured_how}",
            "ok" if self.ok else "MISMATCH between the module and the static analysis",
        ]
        return "\n".join(lines)


def check(make_model: Callable[[], torch.nn.Module], plan: Plan, device: torch.device,
          batch: int, estimate: str) -> CheckReport:
    """Build the model with `make_model` on `device`, run one forward and backward pass,
    and measure what that took, to set beside the estimate."""
    rss_before = _peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = make_model().to(device)
    shapes: list[tuple[str, tuple[int, ...]]] = []
    hooks = [module.register_forward_hook(
                 lambda _m, _i, out, name=name: shapes.append((name, tuple(out.shape))))
             for name, module in model.named_children()]
    x = torch.randn(batch, *plan.input_shape, device=device)
    start = time.perf_counter()
    out = model(x)
    if out.requires_grad:  # a network of pooling and ReLUs alone has nothing to train
        out.float().sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    for hook in hooks:
        hook.remove()
    if device.type == "cuda":
        measured = torch.cuda.max_memory_allocated(device)
        how = "the peak of torch.cuda.max_memory_allocated (tensors, not the CUDA context)"
    else:
        rss_after = _peak_rss()
        measured = rss_after - rss_before
        how = (f"the rise in this process's peak resident memory, from "
               f"{format_bytes(rss_before)} (Python, torch, resdsl) to {format_bytes(rss_after)}")
    return CheckReport(
        network=plan.network, device=describe(device), batch=batch, stage_shapes=shapes,
        output_shape=tuple(out.shape), params=sum(p.numel() for p in model.parameters()),
        static_params=plan.params, static_output=plan.output_shape, seconds=seconds,
        measured_memory=measured, measured_how=how, estimate=estimate)


def _peak_rss() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
