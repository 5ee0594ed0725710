"""Check the IR contract: one input, one output, acyclic, connected, each node with its
op's arity and arguments (as the registry declares them), shapes agree at adds."""

from __future__ import annotations

import networkx as nx

from resdsl.errors import ResdslError
from resdsl.ir.graph import ordered_inputs
from resdsl.ops.registry import op
from resdsl.ops.shapes import format_shape
from resdsl.passes.base import Pass

class Verify(Pass):
    name = "verify"

    def apply(self, graph: nx.DiGraph) -> None:
        if not nx.is_directed_acyclic_graph(graph):
            raise ResdslError(f"internal: the graph of {graph.graph['name']} has a cycle",
                              code="E901")
        ends = {kind: [n for n, o in graph.nodes(data="op") if o == kind]
                for kind in ("input", "output")}
        for kind, found in ends.items():
            if len(found) != 1:
                raise ResdslError(f"internal: the graph has {len(found)} {kind} nodes, not 1",
                                  code="E901")
        reached = nx.descendants(graph, ends["input"][0]) | {ends["input"][0]}
        for node, attrs in graph.nodes(data=True):
            span = attrs.get("span")
            if node not in reached:
                raise ResdslError(f"internal: {node} is not reached from the input", span,
                                  code="E901")
            declared = op(attrs["op"])
            if graph.in_degree(node) != declared.arity:
                raise ResdslError(f"internal: {node} ({attrs['op']}) has {graph.in_degree(node)} "
                                  f"inputs, not {declared.arity}", span, code="E901")
            missing = [arg.name for arg in declared.args if arg.name not in attrs]
            missing += [k for k in ("shape", "params", "macs") if k not in attrs]
            if missing:
                raise ResdslError(f"internal: {node} has no {', '.join(missing)}", span,
                                  code="E901")
            if attrs.get("branch") == "merge":
                self._check_add(graph, node, span)

    def _check_add(self, graph, node, span) -> None:
        branch, shortcut, *gate = (graph.nodes[u]["shape"] for u in ordered_inputs(graph, node))
        if branch != shortcut or any(g != branch for g in gate):
            raise ResdslError(
                f"{node}: the block's output ({format_shape(branch)}) and its shortcut "
                f"({format_shape(shortcut)}) differ at the add", span,
                hint="a shortcut follows the unit's stride and channel count only; here the "
                     "block's convs change the map size themselves (check their `pad`)",
                code="E503")
