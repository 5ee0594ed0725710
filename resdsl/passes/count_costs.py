"""Write `params`, `macs` and `other_ops` onto every node (rules in `resdsl.ir.ops`)."""

from __future__ import annotations

import networkx as nx

from resdsl.ir import ops
from resdsl.ir.graph import input_shapes
from resdsl.passes.base import Pass


class CountCosts(Pass):
    name = "count_costs"

    def apply(self, graph: nx.DiGraph) -> None:
        for node, attrs in graph.nodes(data=True):
            inputs, out = input_shapes(graph, node), attrs["shape"]
            attrs["params"] = ops.params(attrs, inputs, out)
            attrs["macs"] = ops.macs(attrs, inputs, out)
            attrs["other_ops"] = ops.other_ops(attrs, inputs, out)
