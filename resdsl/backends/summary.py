"""Per-stage totals of a verified graph: the rows of Table 1, and the `--json` object."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import networkx as nx

from resdsl.ir import registry
from resdsl.ir.graph import unit_convs, unit_nodes

CONVENTION = ("macs: multiply-adds of conv and fc layers (the paper's 'FLOPs'); "
              "flops: 2 x macs; other_ops: element ops of BN, ReLU, add and pooling; "
              "params: conv and fc weights and biases, and BN's affine scale and shift")


@dataclass
class StageSummary:
    name: str
    output: list[int]
    params: int = 0
    macs: int = 0
    other_ops: int = 0


@dataclass
class NetworkSummary:
    network: str
    file: str
    shortcut: str
    stride_on: str | None  # where bottlenecks put their stride; None without bottlenecks
    input: list[int]
    output: list[int]
    layers: int  # weighted layers as the paper counts depth: conv and fc, not projections
    params: int
    macs: int
    flops: int
    other_ops: int
    stages: list[StageSummary]

    def to_dict(self) -> dict:
        return {"convention": CONVENTION, **asdict(self)}

    def _repr_html_(self) -> str:
        """The stage table, when a notebook shows a summary."""
        from resdsl.backends.table import format_html

        return format_html(self)


def summarize(graph: nx.DiGraph) -> NetworkSummary:
    stages = {s.name: StageSummary(s.name, []) for s in graph.graph["stages"]}
    ends = {}
    for node in nx.topological_sort(graph):
        attrs = graph.nodes[node]
        if attrs["op"] in ("input", "output"):
            ends[attrs["op"]] = list(attrs["shape"])
            continue
        stage = stages[attrs["stage"]]
        stage.params += attrs["params"]
        stage.macs += attrs["macs"]
        stage.other_ops += attrs["other_ops"]
        stage.output = list(attrs["shape"])
    rows = list(stages.values())
    config = graph.graph["config"]
    macs = sum(s.macs for s in rows)
    return NetworkSummary(
        network=graph.graph["name"], file=graph.graph["file"], shortcut=config.shortcut or "none",
        stride_on=config.stride_on if _has_bottleneck(graph) else None, input=ends["input"],
        output=ends["output"], layers=_depth(graph), params=sum(s.params for s in rows),
        macs=macs, flops=2 * macs,
        other_ops=sum(s.other_ops for s in rows), stages=rows)


def _depth(graph: nx.DiGraph) -> int:
    """Weighted layers as the paper counts depth: conv and fc, not shortcut projections,
    SE's squeeze convs or highway gates (SE-ResNet-50 is 50 layers deep, as ResNet-50)."""
    return sum(1 for _, a in graph.nodes(data=True)
               if registry.op(a["op"]).weighted and a.get("branch") in (None, "residual"))


def _has_bottleneck(graph: nx.DiGraph) -> bool:
    """Whether `stride_on` matters: a unit whose first conv is a 1x1 before a larger one."""
    for nodes in unit_nodes(graph).values():
        kernels = [graph.nodes[conv]["kernel"] for conv in unit_convs(graph, nodes)]
        if kernels[0] == 1 and max(kernels) > 1:
            return True
    return False
