"""Queries on the IR graph that every pass and backend shares."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from resdsl.ops.shapes import Shape


def ordered_inputs(graph: nx.DiGraph, node: str) -> list[str]:
    """A node's inputs in argument order (the `input` attribute of each edge)."""
    preds = graph.pred[node]
    if len(preds) < 2:
        return list(preds)
    return sorted(preds, key=lambda u: preds[u].get("input", 0))


def input_shapes(graph: nx.DiGraph, node: str) -> list[Shape]:
    return [graph.nodes[u]["shape"] for u in ordered_inputs(graph, node)]


def nodes_of(graph: nx.DiGraph, op: str) -> Iterator[str]:
    """The nodes of one op, listed first so that the caller may change the graph."""
    return iter([n for n, o in graph.nodes(data="op") if o == op])


def unit_nodes(graph: nx.DiGraph) -> dict[str, list[str]]:
    """Each residual or plain unit's nodes, units in the order they run. A unit is the
    nodes that carry its id in `unit`; each also carries its `branch`: "residual" (F(x),
    or all of a plain unit), "shortcut", "merge" (the add) or "merged" (what acts on the
    sum, the paper's last ReLU). Nodes come in the order they were added, which is data-
    flow order within each branch and from residual to merge to merged (no sort needed)."""
    found: dict[str, list[str]] = {}
    for node in graph.nodes:
        unit = graph.nodes[node].get("unit")
        if unit is not None:
            found.setdefault(unit, []).append(node)
    return found


def branch(graph: nx.DiGraph, nodes: list[str], name: str) -> list[str]:
    """The unit's nodes on one branch, in data-flow order."""
    return [node for node in nodes if graph.nodes[node]["branch"] == name]


def unit_convs(graph: nx.DiGraph, nodes: list[str]) -> list[str]:
    """A unit's convs on its residual branch, in order."""
    return [node for node in branch(graph, nodes, "residual") if graph.nodes[node]["op"] == "conv"]


def strided_conv(graph: nx.DiGraph, nodes: list[str]) -> str:
    """The conv that takes a unit's stride: its `stride_slot` among its convs."""
    unit = graph.nodes[nodes[0]]["unit"]
    return unit_convs(graph, nodes)[graph.graph["units"][unit]["stride_slot"]]


def unit_shortcut(graph: nx.DiGraph, nodes: list[str]) -> str:
    """What joins a unit's merge: "identity", "zero-pad" (option A), "projection" or
    "pooled projection" (ResNet-D); "" for a plain unit, which has no merge."""
    if not branch(graph, nodes, "merge"):
        return ""
    shortcut = branch(graph, nodes, "shortcut")
    if not shortcut:
        return "identity"
    first = graph.nodes[shortcut[0]]["op"]
    return {"pad": "zero-pad", "avgpool": "pooled projection"}.get(first, "projection")
