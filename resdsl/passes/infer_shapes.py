"""Give every node the shape of its output, walking the graph in data-flow order."""

from __future__ import annotations

import networkx as nx

from resdsl.ir.ops import ShapeError, output_shape
from resdsl.ir.graph import input_shapes
from resdsl.passes.base import Pass, located


class InferShapes(Pass):
    """An add takes the shape of its first input (the residual branch); whether the
    shortcut agrees is for `insert_shortcuts` to arrange and `verify` to check."""

    name = "infer_shapes"

    def apply(self, graph: nx.DiGraph) -> None:
        for node in nx.topological_sort(graph):
            attrs = graph.nodes[node]
            try:
                attrs["shape"] = output_shape(attrs, input_shapes(graph, node))
            except ShapeError as error:
                raise located(graph, node, error) from None
