"""Estimate, from the IR alone, the memory a torch module will need, and refuse a module
beyond the `memory` limit before torch allocates a single tensor (a file asking for 10^7
channels would otherwise take the machine down while it initialises its weights).

All counts are float32. Activations are what autograd keeps for the backward pass, as
each op declares it (`OpDef.saved`): the output of each conv, BN, pooling, fc,
zero-padding and dropout node (ReLUs and adds work in place) plus maxpool's int64
indices. `tests/test_hardening.py` holds this within 25% of the bytes torch really saves.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from resdsl import safety
from resdsl.errors import Span
from resdsl.ops.registry import op

FLOAT = 4


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # parameters and BN running statistics
    gradients: int
    momentum: int  # SGD's, when training
    activations: int  # kept for backward, for the whole batch
    batch: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.momentum + self.activations

    def describe(self) -> str:
        parts = [(name, size, after) for name, size, after in (
            ("weights", self.weights, ""), ("gradients", self.gradients, ""),
            ("momentum", self.momentum, ""),
            ("activations", self.activations, f" for a batch of {self.batch}")) if size]
        shares = ", ".join(f"{name} {safety.format_bytes(size)}{after}"
                           for name, size, after in parts)
        return f"{safety.format_bytes(self.total)} ({shares})"


def estimate(graph: nx.DiGraph, batch: int = 0, training: bool = False) -> MemoryEstimate:
    """Memory for the module alone (`batch=0`), for one forward and backward pass of
    `batch` images (gradients too), or for training with SGD (momentum too)."""
    weights = sum(_weight_bytes(attrs) for _, attrs in graph.nodes(data=True))
    per_image = sum(_activation_bytes(attrs) for _, attrs in graph.nodes(data=True))
    gradients = weights if batch or training else 0
    return MemoryEstimate(weights, gradients, weights if training else 0, batch * per_image,
                          batch)


def require(graph: nx.DiGraph, device, batch: int = 0, training: bool = False) -> MemoryEstimate:
    """The estimate, or an error naming the layer that needs the most when it is over the
    `memory` limit (by default the device's free memory)."""
    need = estimate(graph, batch, training)
    limit = safety.current().memory or device_memory(device)
    if limit is None or need.total <= limit:
        return need
    heaviest = max(graph.nodes, key=lambda n: _weight_bytes(graph.nodes[n])
                   + batch * _activation_bytes(graph.nodes[n]))
    span = graph.nodes[heaviest].get("span") or Span(graph.graph["file"], 0, 0)
    raise safety.exceeded(
        "memory", f"{graph.graph['name']} needs an estimated {need.describe()} on {device}",
        span, hint=f"the largest share is {heaviest} here", code="E608", limit=limit)


def device_memory(device) -> int | None:
    """Free memory of a torch device: the GPU's, or this machine's available RAM."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    return safety.machine_memory()


def _weight_bytes(attrs) -> int:
    return FLOAT * attrs.get("params", 0) + op(attrs["op"]).buffers(attrs, attrs["shape"])


def _activation_bytes(attrs) -> int:
    return op(attrs["op"]).saved(attrs, attrs["shape"])
