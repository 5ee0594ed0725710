"""Run the passes in order, optionally dumping the IR after each one (`--dump-ir`)."""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from resdsl.ir.dump import dump
from resdsl.passes.count_costs import CountCosts
from resdsl.passes.infer_shapes import InferShapes
from resdsl.passes.insert_shortcuts import InsertShortcuts
from resdsl.passes.verify import Verify

PIPELINE = (InferShapes(), InsertShortcuts(), CountCosts(), Verify())


def run_pipeline(graph: nx.DiGraph, dump_to: Callable[[str], None] | None = None) -> nx.DiGraph:
    if dump_to:
        dump_to(dump(graph, "after elaborate"))
    for step in PIPELINE:
        step.apply(graph)
        if dump_to:
            dump_to(dump(graph, f"after {step.name}"))
    return graph
