"""What a pass is, and how a pass reports an op's complaint at the node's text."""

from __future__ import annotations

import networkx as nx

from resdsl.errors import ResdslError, Span
from resdsl.ops.shapes import ShapeError


class Pass:
    """A named step that takes a valid graph and leaves a valid graph."""

    name = "pass"

    def apply(self, graph: nx.DiGraph) -> None:
        raise NotImplementedError


def located(graph: nx.DiGraph, node: str, error: ShapeError) -> ResdslError:
    """Re-raise an op's shape complaint at the text the node came from."""
    span = graph.nodes[node].get("span")
    hint = "; ".join(filter(None, [error.hint, _called(graph, node, span),
                                   inherited(graph, span, "this layer")]))
    return ResdslError(f"{node}: {error}", span, hint=hint or None, code=error.code)


def _called(graph: nx.DiGraph, node: str, span: Span | None) -> str | None:
    """Where a unit's layer is a named block's, the call that gave it its widths: the
    line to fix is often that one (`bottleneck(100)`), not the block's."""
    unit = graph.nodes[node].get("unit")
    call = graph.graph["units"][unit]["call"] if unit else None
    if call is None or span is None or call.line == span.line:
        return None
    where = f"line {call.line}" if call.file == span.file else f"{call}"
    return f"{unit} is the block as {graph.nodes[node]['stage']} calls it at {where}"


def inherited(graph: nx.DiGraph, span: Span | None, what: str) -> str | None:
    """Where a file that `extends` another fails in text it did not write, say so: the
    fix may be there, or in a value this file sets."""
    if span is None or span.line < 1 or span.file == graph.graph["file"]:
        return None
    return f"{what} is written in {span.file}, which {graph.graph['file']} extends"
