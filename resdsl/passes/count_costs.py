"""Write `params`, `macs` and `other_ops` onto every node, as each node's op declares."""

from __future__ import annotations

import networkx as nx

from resdsl.ops.registry import op
from resdsl.ir.graph import input_shapes
from resdsl.passes.base import Pass


class CountCosts(Pass):
    name = "count_costs"

    def apply(self, graph: nx.DiGraph) -> None:
        for node, attrs in graph.nodes(data=True):
            inputs, out = input_shapes(graph, node), attrs["shape"]
            declared = op(attrs["op"])
            attrs["params"] = declared.params(attrs, inputs, out)
            attrs["macs"] = declared.macs(attrs, inputs, out)
            attrs["other_ops"] = declared.other_ops(attrs, inputs, out)
