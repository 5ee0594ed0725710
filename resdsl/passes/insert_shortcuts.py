"""Turn each unit's identity shortcut into what the network's option asks for.

Paper, sec. 3.3 and Table 3: option A keeps the identity and, where the shape changes,
subsamples it with the unit's stride and pads the new channels with zeros (no
parameters); B projects with a 1x1 conv (and BN) only where the shape changes; C
projects on every shortcut.
"""

from __future__ import annotations

import networkx as nx

from resdsl.ir.registry import output_shape
from resdsl.ir.shapes import ShapeError
from resdsl.ir.graph import branch, ordered_inputs, strided_conv, unit_nodes
from resdsl.passes.base import Pass, located


class InsertShortcuts(Pass):
    name = "insert_shortcuts"

    def apply(self, graph: nx.DiGraph) -> None:
        config = graph.graph["config"]
        for nodes in unit_nodes(graph).values():
            merge = branch(graph, nodes, "merge")
            if not merge:
                continue  # a plain unit
            (add,) = merge
            residual, source = ordered_inputs(graph, add)
            out = graph.nodes[residual]["shape"]
            stride = graph.nodes[strided_conv(graph, nodes)]["stride"]
            changes = out != graph.nodes[source]["shape"]
            if config.shortcut == "C" or (config.shortcut == "B" and changes):
                layers = [("conv", dict(op="conv", kernel=1, stride=stride, padding=0,
                                        out_channels=out[0], groups=1, bias=config.bias))]
                layers += [("bn", dict(op="bn"))] if config.bn else []
                _reroute(graph, add, source, layers)
            elif config.shortcut == "A" and changes:
                _reroute(graph, add, source,
                         [("pad", dict(op="pad", stride=stride, out_channels=out[0]))])


def _reroute(graph, add, source, layers) -> None:
    """Replace the edge source → add by source → layers → add, giving each its shape."""
    a = graph.nodes[add]
    graph.remove_edge(source, add)
    tail = source
    for name, attrs in layers:
        node = f"{a['unit']}.shortcut.{name}"
        graph.add_node(node, scope=node, span=a["span"], stage=a["stage"], unit=a["unit"],
                       branch="shortcut", **attrs)
        graph.add_edge(tail, node, input=0)
        try:
            graph.nodes[node]["shape"] = output_shape(graph.nodes[node], [graph.nodes[tail]["shape"]])
        except ShapeError as error:
            raise located(graph, node, error) from None
        tail = node
    graph.add_edge(tail, add, input=1, shortcut=True)
