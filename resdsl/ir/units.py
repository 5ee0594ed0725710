"""A residual block's units as IR nodes: the paper's building block (Fig. 2 and Fig. 5),
conv → BN → ReLU for each conv but the last, whose BN feeds the merge; the ReLU follows.

Each node carries its unit's id and its branch ("residual", "merge", "merged"), and the
graph records each unit's stage, place and strided conv (`graph.graph["units"]`): that
is all that later passes and backends read of a unit. The merge's second input is the
identity edge from the unit's input, marked `shortcut`; `insert_shortcuts` turns it into
a zero-padding or projection shortcut where the option asks for one. With shortcuts off
(`shortcut none`) a unit is plain: no merge.
"""

from __future__ import annotations

import networkx as nx

from resdsl.ir.shapes import same_padding


def stride_slot(kernels: list[int], stride_on: str) -> int:
    """The conv that takes a unit's stride: the first (the paper's v1), or with
    `stride_on 3x3` the first larger than 1x1 (torchvision's v1.5)."""
    if stride_on == "3x3":
        return next((i for i, k in enumerate(kernels) if k > 1), 0)
    return 0


def add_units(graph: nx.DiGraph, tail: str, stage: str, block, config, first: int) -> str:
    """Append `block.repeat` units after `tail`, numbered from `first` in their stage;
    the first takes the block's stride. Returns the last node."""
    residual = config.shortcut not in (None, "none")
    slot = stride_slot([conv.kernel for conv in block.body], config.stride_on)
    units = graph.graph["units"]
    for i in range(block.repeat):
        scope = f"{stage}.{first + i}"
        units[scope] = {"stage": stage, "index": first + i, "stride_slot": slot}
        tail = _unit(graph, block, scope, stage, tail, slot, i == 0, config, residual)
    return tail


def _unit(graph, block, scope, stage, unit_input, slot, first, config, residual) -> str:
    tail, last, part = unit_input, len(block.body) - 1, "residual"

    def add(name, span, **attrs):
        nonlocal tail
        node = f"{scope}.{name}"
        graph.add_node(node, scope=node, span=span, stage=stage, unit=scope, branch=part,
                       **attrs)
        graph.add_edge(tail, node, input=0)
        tail = node

    for j, conv in enumerate(block.body):
        strided = first and j == slot
        add(f"conv{j + 1}", conv.span, op="conv", kernel=conv.kernel,
            stride=block.stride if strided else 1,
            stride_explicit=strided and block.stride_explicit,
            padding=conv.padding if conv.padding is not None else same_padding(conv.kernel),
            out_channels=conv.channels, groups=1, bias=config.bias)
        if config.bn:
            add(f"bn{j + 1}", conv.span, op="bn")
        if j == last and residual:
            part = "merge"
            add("add", block.span, op="add")
            graph.add_edge(unit_input, tail, input=1, shortcut=True)
            part = "merged"
        add(f"relu{j + 1}", conv.span, op="relu")
    return tail
