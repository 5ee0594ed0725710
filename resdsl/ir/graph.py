"""Queries on the IR graph that every pass and backend shares."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from resdsl.ir.shapes import Shape


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


def unit_convs(graph: nx.DiGraph, unit: str) -> list[str]:
    """A residual or plain unit's convs in order: `unit.conv1`, `unit.conv2`, ..."""
    convs, j = [], 1
    while f"{unit}.conv{j}" in graph:
        convs.append(f"{unit}.conv{j}")
        j += 1
    return convs


def unit_shortcut(graph: nx.DiGraph, unit: str) -> str:
    """What joins a unit's add: "identity", "zero-pad" (option A) or "projection"; ""
    for a plain unit, which has no add."""
    add = f"{unit}.add"
    if add not in graph:
        return ""
    source = ordered_inputs(graph, add)[1]
    if graph.nodes[source].get("unit") != unit:
        return "identity"
    return "zero-pad" if graph.nodes[source]["op"] == "pad" else "projection"
