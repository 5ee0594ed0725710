"""One unit of the graph as the generated file instantiates it: its kind (the steps its
class builds and calls, widths and stride written symbolically, so that units differing
only in those share a class) and the widths and stride of this instance."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from resdsl.ir.graph import branch, ordered_inputs, strided_conv, unit_convs, unit_shortcut
from resdsl.ops.registry import op
from resdsl.ops.shapes import Shape


@dataclass(frozen=True)
class Step:
    """One node of a unit, as its class builds and calls it: its .arch member name, op,
    branch, the members it reads ("" is the unit's input, "shortcut" the shortcut's
    output), the width of what it reads, and its op's arguments, widths and stride
    written symbolically (`channels[1]`, `in_channels`, `stride`), so that units
    differing only in those share a class."""

    member: str
    op: str
    branch: str
    inputs: tuple[str, ...]
    in_width: str
    args: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class UnitKind:
    """What makes two units need different classes (everything but widths and stride):
    its nodes in data-flow order, from which the unit's forward is written, so it cannot
    disagree with the graph."""

    steps: tuple[Step, ...]
    shortcut_source: str  # the member whose output the shortcut reads; "" the unit's input
    residual: bool

    @property
    def kernels(self) -> tuple[int, ...]:
        return tuple(dict(s.args)["kernel"] for s in self.steps
                     if s.op == "conv" and s.branch == "residual")


@dataclass
class Unit:
    path: tuple[str, ...]
    kind: UnitKind
    in_channels: int
    channels: tuple[int, ...]  # its residual convs' widths, then any other conv's own
    stride: int
    # "identity", "zero-pad", "projection", "pooled projection"; "" in a plain unit
    shortcut: str
    shortcut_steps: tuple[Step, ...]
    shape: Shape



def unit_plan(graph: nx.DiGraph, nodes: list[str], path: tuple[str, ...]) -> Unit:
    """One unit of the graph (its nodes, in data-flow order) as an instance of its kind."""
    convs = unit_convs(graph, nodes)
    (source,) = ordered_inputs(graph, nodes[0])
    strided = {strided_conv(graph, nodes)} | set(branch(graph, nodes, "gate"))
    stride = graph.nodes[strided_conv(graph, nodes)]["stride"]
    symbolic = _Widths(graph, nodes, source, convs)
    own = set(nodes)

    def step(node: str) -> Step:
        attrs = graph.nodes[node]
        args = {}
        for arg in op(attrs["op"]).args:
            value = attrs[arg.name]
            if arg.name in ("out_channels",):
                value = symbolic.width(node)
            elif arg.name == "stride" and (node in strided or (
                    attrs["branch"] == "shortcut" and value == stride)):
                value = "stride"
            args[arg.name] = value
        reads = ordered_inputs(graph, node)
        inputs = tuple("shortcut" if graph.edges[u, node].get("shortcut")
                       and attrs["branch"] != "shortcut"
                       else graph.nodes[u]["member"] if u in own else "" for u in reads)
        return Step(attrs["member"], attrs["op"], attrs["branch"], inputs,
                    symbolic.width(reads[0]), tuple(sorted(args.items())))

    shortcut_nodes = branch(graph, nodes, "shortcut")
    body = [n for n in nodes if graph.nodes[n]["branch"] != "shortcut"]
    reads = ordered_inputs(graph, shortcut_nodes[0]) if shortcut_nodes else []
    kind = UnitKind(steps=tuple(step(n) for n in body),
                    shortcut_source=graph.nodes[reads[0]]["member"] if reads and reads[0] in own
                    else "", residual=bool(branch(graph, nodes, "merge")))
    return Unit(path, kind, graph.nodes[source]["shape"][0], symbolic.channels, stride,
                unit_shortcut(graph, nodes), tuple(step(n) for n in shortcut_nodes),
                graph.nodes[body[-1]]["shape"])


class _Widths:
    """Each node's output width as the unit class writes it: `in_channels`, `channels[j]`
    for the j-th conv of the residual branch, and for a conv elsewhere (SE's squeeze)
    an entry of its own after them, unless it restores the branch's width."""

    def __init__(self, graph: nx.DiGraph, nodes: list[str], source: str, convs: list[str]):
        self.graph, self.source = graph, source
        self.index = {conv: j for j, conv in enumerate(convs)}
        self.channels = [graph.nodes[c]["out_channels"] for c in convs]
        self.out = f"channels[{len(convs) - 1}]"
        for node in nodes:
            attrs = graph.nodes[node]
            if attrs["op"] == "conv" and node not in self.index \
                    and attrs["out_channels"] != self.channels[len(convs) - 1]:
                self.index[node] = len(self.channels)
                self.channels.append(attrs["out_channels"])
        self.channels = tuple(self.channels)

    def width(self, node: str) -> str:
        if node == self.source or node not in self.graph.nodes or "unit" not in \
                self.graph.nodes[node]:
            return "in_channels"
        if node in self.index:
            return f"channels[{self.index[node]}]"
        if "out_channels" in self.graph.nodes[node]:  # a conv or zero-pad to the unit's width
            return self.out
        (first, *_) = ordered_inputs(self.graph, node)
        return self.width(first)
