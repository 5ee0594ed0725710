"""Per-stage totals of a verified graph: the rows of Table 1, the `--json` object, the
metrics a table can show of them, and the HTML a notebook shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from html import escape

import networkx as nx

from resdsl.ops import registry
from resdsl.ir.graph import unit_convs, unit_nodes
from resdsl.ops.shapes import format_shape

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
        return format_html(self)


METRICS = {
    "macs": ("MACs", "multiply-adds of conv and fc layers, the paper's 'FLOPs' (Table 1)"),
    "flops": ("FLOPs", "2 x the multiply-adds of conv and fc layers"),
    "macs+ops": ("MACs+ops", "multiply-adds of conv and fc layers, plus one op per element "
                             "of BN, ReLU and add and per window element of pooling"),
    "flops+ops": ("FLOPs+ops", "2 x the multiply-adds of conv and fc layers, plus one op per "
                               "element of BN, ReLU and add and per window element of pooling"),
}


def work(row: StageSummary | NetworkSummary, metric: str) -> int:
    scale = 2 if metric.startswith("flops") else 1
    return scale * row.macs + (row.other_ops if metric.endswith("+ops") else 0)


def format_html(net: NetworkSummary) -> str:
    """One network's stages, params and MACs as an HTML table (a notebook shows it)."""
    cell = '<td style="text-align:right">{}</td>'.format
    rows = "".join(f"<tr><td>{escape(s.name)}</td>{cell(format_shape(s.output))}"
                   f"{cell(f'{s.params:,}')}{cell(f'{s.macs:,}')}</tr>" for s in net.stages)
    total = (f"<tr><th>total</th>{cell(format_shape(net.output))}{cell(f'{net.params:,}')}"
             f"{cell(f'{net.macs:,}')}</tr>")
    stride = f", stride on {net.stride_on}" if net.stride_on else ""
    return (f"<table><caption>{escape(net.network)} ({escape(net.file)}): input "
            f"{format_shape(net.input)}, shortcut {net.shortcut}{stride}, {net.layers} layers"
            "</caption><thead><tr><th>stage</th><th>output (CxHxW)</th><th>params</th>"
            f"<th>MACs</th></tr></thead><tbody>{rows}{total}</tbody></table>"
            f"<p><small>MACs: {METRICS['macs'][1]}; params: conv and fc weights and biases, "
            "and BN's affine scale and shift</small></p>")


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
