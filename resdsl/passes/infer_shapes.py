"""Give every node the shape of its output, walking the graph in data-flow order."""

from __future__ import annotations

import networkx as nx

from resdsl.errors import Diagnostic
from resdsl.ops.builtin import skipped_pixels
from resdsl.ops.registry import op, output_shape
from resdsl.ops.shapes import ShapeError
from resdsl.ir.graph import input_shapes
from resdsl.passes.base import Pass, located
from resdsl.passes.columns import read_columns


class InferShapes(Pass):
    """The one shape inference: first the output-size columns are read (`columns.py`:
    they imply the strides a stage does not write, and are checked, at the input size the
    file declares); then every node gets its shape from its op's rule, in data-flow order.
    A merge takes the shape of its residual branch; whether the shortcut agrees is for
    `insert_shortcuts` to arrange and `verify` to check. A stride that skips input pixels
    gets a warning (W103) at its layer."""

    name = "infer_shapes"

    def apply(self, graph: nx.DiGraph) -> None:
        written = read_columns(graph)  # True: the stages' shapes are already on their nodes
        for node in graph.nodes:  # before shortcuts, the order elaboration wrote: data flow
            attrs = graph.nodes[node]
            known = written and attrs["stage"] is not None
            if known and not op(attrs["op"]).strided:
                continue  # its shape is written, and it has no stride to judge
            inputs = input_shapes(graph, node)
            if not known:
                try:
                    attrs["shape"] = output_shape(attrs, inputs)
                except ShapeError as error:
                    raise located(graph, node, error) from None
            slip = skipped_pixels(attrs, inputs)
            if slip:
                graph.graph["warnings"].append(Diagnostic(
                    "W103", f"{node}: {slip}", attrs["span"], severity="warning",
                    hint=f"the paper's strides are 1 and 2; if /{attrs['stride']} is meant, "
                         "this warning can be ignored"))
