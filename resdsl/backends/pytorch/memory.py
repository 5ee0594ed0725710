"""The memory a torch module of the IR needs, from the graph alone: its weights, in
training their gradients and the optimizer's state, and the activations of a batch (per
layer: `storages.py`), with the largest batch that fits a budget. The `memory` limit
refuses a module beyond it before torch allocates a single tensor (a file asking for
10^7 channels would otherwise take the machine down while it initialises its weights).

Weights and gradients are float32 (under --amp too: autocast keeps float32 masters).
In training the activations are what autograd keeps for backward, held exactly against
torch's saved-tensor hooks for every bundled network (`tests/test_memory.py`); in
inference, the most that is alive at once while a layer runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from resdsl import safety
from resdsl.backends.pytorch.storages import LayerMemory, layers
from resdsl.errors import ResdslError, Span
from resdsl.ops.registry import op

FLOAT = 4
# the optimizer's state in copies of the trained parameters: SGD's momentum (resdsl
# train's), AdamW's two moments
OPTIMIZERS = {"sgd": 1, "adamw": 2}
AMP = ("bf16", "fp16")


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # parameters and buffers (BN's running statistics)
    gradients: int
    optimizer: int
    activations: int  # training: kept for backward; inference: the peak alive at once
    batch: int
    training: bool
    layers: tuple[LayerMemory, ...] = ()

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        parts = [(name, size, after) for name, size, after in (
            ("weights", self.weights, ""), ("gradients", self.gradients, ""),
            ("optimizer state", self.optimizer, ""),
            ("activations", self.activations, f" for a batch of {self.batch}")) if size]
        shares = ", ".join(f"{name} {safety.format_bytes(size)}{after}"
                           for name, size, after in parts)
        return f"{safety.format_bytes(self.total)} ({shares})"

    def _repr_html_(self) -> str:
        """Per stage and in total, in MiB, when a notebook shows an estimate."""
        from html import escape

        stages: dict[str, int] = {}
        for layer in self.layers:
            stage = layer.stage or layer.name
            stages[stage] = stages.get(stage, 0) + (layer.kept if self.training else layer.live)
        if not self.training:  # inference: the peak of each stage, not a sum
            stages = {stage: max(layer.live for layer in self.layers
                                 if (layer.stage or layer.name) == stage) for stage in stages}
        row = "<tr><td>{}</td><td style=\"text-align:right\">{:,.2f}</td></tr>".format
        rows = [row(escape(stage), size / 2**20) for stage, size in stages.items()]
        rows += [row(f"<b>{name}</b>", size / 2**20) for name, size in (
            ("weights", self.weights), ("gradients", self.gradients),
            ("optimizer", self.optimizer), ("activations", self.activations),
            ("total", self.total))]
        what = ("kept for backward in a training step" if self.training
                else "alive at the peak of each stage in inference")
        return (f"<table><caption>memory (MiB) for a batch of {self.batch}: activations {what}"
                f"</caption><tbody>{''.join(rows)}</tbody></table>")

    def to_dict(self) -> dict:
        """Bytes, as `resdsl memory --json` prints them."""
        return {"batch": self.batch, "mode": "train" if self.training else "eval",
                "weights": self.weights, "gradients": self.gradients,
                "optimizer": self.optimizer, "activations": self.activations,
                "total": self.total,
                "layers": [{"name": layer.name, "op": layer.op, "stage": layer.stage,
                            "bytes": layer.kept if self.training else layer.live}
                           for layer in self.layers]}


def estimate(graph: nx.DiGraph, batch: int = 0, training: bool = False,
             optimizer: str | None = None, amp: str | None = None,
             device: str = "cpu") -> MemoryEstimate:
    """Memory for the module alone (`batch=0`); for inference on `batch` images; or,
    `training`, for a step of `optimizer` (None: gradients but no optimizer state)."""
    weights = sum(_weight_bytes(attrs) for _, attrs in graph.nodes(data=True))
    trained = FLOAT * sum(attrs.get("params", 0) for _, attrs in graph.nodes(data=True))
    per_layer = tuple(layers(graph, batch, amp, device)) if batch else ()
    activations = (sum(layer.kept for layer in per_layer) if training else
                   max((layer.live for layer in per_layer), default=0))
    return MemoryEstimate(weights, trained if training else 0,
                          OPTIMIZERS[optimizer] * trained if training and optimizer else 0,
                          activations, batch, training, per_layer)


def largest_batch(graph: nx.DiGraph, budget: int, **options) -> int:
    """The largest batch whose estimate fits `budget` bytes (E714 when none does). The
    estimate grows linearly with the batch, so two estimates give it."""
    one, two = estimate(graph, 1, **options), estimate(graph, 2, **options)
    state = one.total - one.activations
    if state > budget or one.total > budget:
        alone = ("the weights, gradients and optimizer state" if one.training
                 else "the weights alone")
        what = (f"{alone} need {safety.format_bytes(state)}" if state > budget else
                f"a batch of 1 needs {one.describe()}")
        raise ResdslError(f"{graph.graph['name']} does not fit in "
                          f"{safety.format_bytes(budget)}: {what}",
                          Span(graph.graph["file"], 0, 0), code="E714")
    per_image = two.total - one.total  # the rest (BN's batch statistics) is per step
    return (budget - (one.total - per_image)) // per_image


def require(graph: nx.DiGraph, device, batch: int = 0, training: bool = False,
            optimizer: str | None = None, amp: str | None = None) -> MemoryEstimate:
    """The estimate, or an error naming the layer that needs the most when it is over
    the `memory` limit (by default the device's free memory)."""
    need = estimate(graph, batch, training, optimizer, amp,
                    device=getattr(device, "type", str(device)))
    limit = safety.current().memory or device_memory(device)
    if limit is None or need.total <= limit:
        return need
    by_layer = {layer.name: layer.kept if training else layer.live for layer in need.layers}
    heaviest = max(graph.nodes, key=lambda n: _weight_bytes(graph.nodes[n])
                   + by_layer.get(n, 0))
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


def format_memory(estimate: MemoryEstimate, graph: nx.DiGraph, optimizer: str | None,
                  amp: str | None) -> str:
    """The per-layer table and the totals, in MiB (2^20 bytes)."""
    from resdsl.backends.table import align
    from resdsl.ops.shapes import format_shape

    mib = lambda count: f"{count / 2**20:,.2f}"  # noqa: E731
    column = "kept (MiB)" if estimate.training else "alive (MiB)"
    rows = [["layer", "op", "output (CxHxW)", column]]
    rows += [[layer.name, layer.op, format_shape(graph.nodes[layer.name]["shape"]),
              mib(layer.kept if estimate.training else layer.live)] for layer in estimate.layers]
    mode = (f"training with {optimizer.upper() if optimizer == 'sgd' else 'AdamW'}"
            if estimate.training and optimizer else "training" if estimate.training
            else "inference")
    precision = f"{amp} autocast" if amp else "float32"
    meaning = ("what autograd keeps for backward, each storage counted once at the layer "
               "that allocated it" if estimate.training else
               "the maps alive while each layer runs; the largest is the activations' total")
    lines = [f"{graph.graph['name']} ({graph.graph['file']}): {mode}, batch {estimate.batch}, "
             f"{precision}", f"{column}: {meaning}; MiB = 2^20 bytes", ""]
    lines += align(rows) + [""]
    totals = [("weights", estimate.weights, "parameters and BN's running statistics, float32"),
              ("gradients", estimate.gradients, "float32"),
              ("optimizer", estimate.optimizer,
               {"sgd": "SGD's momentum", "adamw": "AdamW's two moments"}.get(optimizer, "")),
              ("activations", estimate.activations,
               "kept for backward" if estimate.training else "the peak alive at once"),
              ("total", estimate.total, "")]
    shown = [(name, mib(size), note) for name, size, note in totals
             if size or name in ("weights", "activations", "total")]
    width = max(len(size) for _, size, _ in shown)
    lines += [f"{name:<12}{size:>{width}} MiB  {note}".rstrip() for name, size, note in shown]
    return "\n".join(lines)
