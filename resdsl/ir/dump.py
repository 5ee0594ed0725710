"""A readable text form of the IR, one node a line in data-flow order (`--dump-ir`)."""

from __future__ import annotations

import networkx as nx

from resdsl.ir.graph import ordered_inputs

_SHOWN_LAST = ("shape", "params", "macs")
_HIDDEN = {"op", "scope", "span", "stage", "body_spans"} | set(_SHOWN_LAST)


def dump(graph: nx.DiGraph, title: str) -> str:
    lines = [f"== {title}: {graph.graph['name']}, {graph.number_of_nodes()} nodes =="]
    for node in nx.topological_sort(graph):
        attrs = graph.nodes[node]
        inputs = ordered_inputs(graph, node)
        fields = [f"{k}={v}" for k, v in attrs.items() if k not in _HIDDEN and v is not None]
        fields += [f"{k}={attrs[k]}" for k in _SHOWN_LAST if k in attrs]
        span = attrs.get("span")
        where = f"  @{span.line}:{span.column}" if span is not None and span.line else ""
        lines.append(f"{node:<28} {attrs['op']:<8} <- {', '.join(inputs) or '-'}  "
                     f"{' '.join(fields)}{where}")
    return "\n".join(lines)
