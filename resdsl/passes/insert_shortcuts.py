"""Turn each unit's identity shortcut into what the network's option asks for.

Paper, sec. 3.3 and Table 3: option A keeps the identity and, where the shape changes,
subsamples it with the unit's stride and pads the new channels with zeros (no
parameters); B projects with a 1x1 conv (and BN) only where the shape changes; C
projects on every shortcut. `projection pooled` (ResNet-D, He et al. 2019) averages
2x2 windows with the stride before a 1x1 conv of stride 1, so that the projection reads
every input pixel. A highway unit's carry path is option A's. With pre-activation a
projection reads the unit's input after its first BN-ReLU and has no BN of its own, as
in the ECCV 2016 code (and timm's ResNetV2, and Wide ResNet's).
"""

from __future__ import annotations

import networkx as nx

from resdsl.ops.registry import output_shape
from resdsl.ops.shapes import ShapeError
from resdsl.ir.graph import branch, input_shapes, ordered_inputs, strided_conv, unit_nodes
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
            residual, source, *_ = ordered_inputs(graph, add)
            out = graph.nodes[residual]["shape"]
            stride = graph.nodes[strided_conv(graph, nodes)]["stride"]
            changes = out != graph.nodes[source]["shape"]
            for gate in branch(graph, nodes, "gate"):  # a highway gate takes the unit's stride
                attrs = graph.nodes[gate]
                if attrs["op"] == "conv":
                    attrs["stride"] = stride
                attrs["shape"] = output_shape(attrs, input_shapes(graph, gate))
            if config.shortcut == "C" or (config.shortcut == "B" and changes):
                unit = graph.graph["units"][graph.nodes[add]["unit"]]
                _reroute(graph, add, source, _projection(config, stride, out[0]),
                         reads=unit.get("preactivated", source))
            elif config.shortcut in ("A", "highway") and changes:
                _reroute(graph, add, source,
                         [("pad", dict(op="pad", stride=stride, out_channels=out[0]))])


def _projection(config, stride: int, channels: int) -> list[tuple[str, dict]]:
    """A 1x1 conv (and BN) to the unit's width, strided or after ResNet-D's 2x2 pool."""
    pooled = config.projection == "pooled" and stride > 1
    layers = [("pool", dict(op="avgpool", kernel=2, stride=stride, padding=0, ceil=True,
                            stride_explicit=False, **{"global": False}))] if pooled else []
    layers += [("conv", dict(op="conv", kernel=1, stride=1 if pooled else stride, padding=0,
                             out_channels=channels, groups=1, bias=config.bias))]
    return layers + ([("bn", dict(op="bn"))] if config.bn and not config.preact else [])


def _reroute(graph, add, source, layers, reads: str | None = None) -> None:
    """Replace the edge source → add by reads → layers → add (`reads` is the source
    unless pre-activation gives the projection another), giving each node its shape."""
    a = graph.nodes[add]
    graph.remove_edge(source, add)
    tail = reads or source
    for name, attrs in layers:
        node = f"{a['unit']}.shortcut.{name}"
        graph.add_node(node, scope=node, span=a["span"], stage=a["stage"], unit=a["unit"],
                       branch="shortcut", member=f"shortcut.{name}", **attrs)
        graph.add_edge(tail, node, input=0)
        try:
            graph.nodes[node]["shape"] = output_shape(graph.nodes[node], [graph.nodes[tail]["shape"]])
        except ShapeError as error:
            raise located(graph, node, error) from None
        tail = node
    graph.add_edge(tail, add, input=1, shortcut=True)
