"""What a pass is, and how a pass reports an op's complaint at the node's text."""

from __future__ import annotations

import networkx as nx

from resdsl.errors import ResdslError
from resdsl.ops.shapes import ShapeError


class Pass:
    """A named step that takes a valid graph and leaves a valid graph."""

    name = "pass"

    def apply(self, graph: nx.DiGraph) -> None:
        raise NotImplementedError


def located(graph: nx.DiGraph, node: str, error: ShapeError) -> ResdslError:
    """Re-raise an op's shape complaint at the text the node came from."""
    return ResdslError(f"{node}: {error}", graph.nodes[node].get("span"), code=error.code)
