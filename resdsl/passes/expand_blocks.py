"""Unroll each `block` node into its residual units (or plain units, with shortcuts off).

A unit is the paper's building block (Fig. 2 and Fig. 5): conv → BN → ReLU for each
conv but the last, whose BN feeds the add; the ReLU follows the add. The add's second
input is, for now, the identity edge from the unit's input; `insert_shortcuts` turns it
into a zero-padding or projection shortcut where the option asks for one.
"""

from __future__ import annotations

import networkx as nx

from resdsl.ir.graph import nodes_of
from resdsl.passes.base import Pass


class ExpandBlocks(Pass):
    name = "expand_blocks"

    def apply(self, graph: nx.DiGraph) -> None:
        config = graph.graph["config"]
        residual = config.shortcut not in (None, "none")
        graph.graph["units"] = {}  # id -> its stage, its place there, its strided conv
        for block in list(nodes_of(graph, "block")):
            (before,), (after,) = graph.predecessors(block), graph.successors(block)
            attrs = graph.nodes[block]
            graph.remove_node(block)
            tail = before
            for i in range(attrs["repeat"]):
                stride = attrs["stride"] if i == 0 else 1
                index = attrs["first_unit"] + i
                scope = f"{attrs['stage']}.{index}"
                graph.graph["units"][scope] = {"stage": attrs["stage"], "index": index,
                                               "stride_slot": attrs["stride_slot"]}
                tail = _unit(graph, attrs, scope, tail, stride, config, residual)
            graph.add_edge(tail, after, input=0)


def _unit(graph, block, scope, unit_input, stride, config, residual) -> str:
    """Add one unit after `unit_input`; return its last node. Its nodes carry the unit's
    id and their branch, which is all that later passes and backends read of it."""
    common = dict(stage=block["stage"], unit=scope)
    tail, last, part = unit_input, len(block["body"]) - 1, "residual"

    def add(name, span, **attrs):
        nonlocal tail
        node = f"{scope}.{name}"
        graph.add_node(node, scope=node, span=span, branch=part, **common, **attrs)
        graph.add_edge(tail, node, input=0)
        tail = node

    for j, ((kernel, channels, padding), span) in enumerate(zip(block["body"], block["body_spans"])):
        add(f"conv{j + 1}", span, op="conv", kernel=kernel,
            stride=stride if j == block["stride_slot"] else 1, padding=padding,
            out_channels=channels, groups=1, bias=config.bias)
        if config.bn:
            add(f"bn{j + 1}", span, op="bn")
        if j == last and residual:
            part = "merge"
            add("add", block["span"], op="add", stride=stride)
            graph.add_edge(unit_input, tail, input=1, shortcut=True)
            part = "merged"
        add(f"relu{j + 1}", span, op="relu")
    return tail
