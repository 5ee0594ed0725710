"""What a pass is, and the helpers that every pass shares."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from resdsl.errors import ResdslError
from resdsl.ir.ops import Shape, ShapeError


class Pass:
    """A named step that takes a valid graph and leaves a valid graph."""

    name = "pass"

    def apply(self, graph: nx.DiGraph) -> None:
        raise NotImplementedError


def ordered_inputs(graph: nx.DiGraph, node: str) -> list[str]:
    """A node's inputs in argument order (the `input` attribute of each edge)."""
    preds = graph.pred[node]
    if len(preds) < 2:
        return list(preds)
    return sorted(preds, key=lambda u: preds[u].get("input", 0))


def input_shapes(graph: nx.DiGraph, node: str) -> list[Shape]:
    return [graph.nodes[u]["shape"] for u in ordered_inputs(graph, node)]


def located(graph: nx.DiGraph, node: str, error: ShapeError) -> ResdslError:
    """Re-raise an op's shape complaint at the text the node came from."""
    return ResdslError(f"{node}: {error}", graph.nodes[node].get("span"))


def nodes_of(graph: nx.DiGraph, op: str) -> Iterator[str]:
    return (n for n, o in list(graph.nodes(data="op")) if o == op)
