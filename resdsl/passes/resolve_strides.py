"""Check the output-size column, and let it imply a stage's stride where none is written.

`conv3_x 28x28 : [3x3, 128; 3x3, 128] x 4` after a 56x56 stage needs a stride of 2; the
paper puts it on the stage's first unit (conv3_1). When a stage writes no stride, the
stride of its first strided layer is found by search (output size falls as stride rises);
when it writes one, the column is only checked.
"""

from __future__ import annotations

import networkx as nx

from resdsl.errors import ResdslError
from resdsl.ir.ops import ShapeError, format_shape, output_shape, spatial
from resdsl.passes.base import Pass, located

_STRIDED = ("conv", "maxpool", "avgpool", "block")


class ResolveStrides(Pass):
    name = "resolve_strides"

    def apply(self, graph: nx.DiGraph) -> None:
        chain = list(nx.topological_sort(graph))
        shape = graph.nodes[chain[0]]["shape"]
        by_stage: dict[str, list[str]] = {}
        for node in chain[1:]:
            by_stage.setdefault(graph.nodes[node]["stage"], []).append(node)
        for stage in graph.graph["stages"]:
            nodes = by_stage.get(stage["name"], [])
            try:
                shape = self._resolve(graph, stage, nodes, shape)
            except ResdslError as error:
                if stage is not graph.graph["stages"][0] or error.code != "E502":
                    raise
                raise _blame_the_input_too(error, graph) from None

    def _resolve(self, graph, stage, nodes, shape):
        want = stage["size"]
        if want is not None and not any(graph.nodes[n].get("stride_explicit") for n in nodes):
            first = next((n for n in nodes if graph.nodes[n]["op"] in _STRIDED
                          and not graph.nodes[n].get("global")), None)
            if first is not None:
                graph.nodes[first]["stride"] = self._search(graph, stage, nodes, shape, first)
        out = _run(graph, nodes, shape)
        if want is not None and not _matches(out, want):
            raise ResdslError(
                f"stage {stage['name']} is annotated {format_shape(want)} but its layers give "
                f"{format_shape(out if len(want) == 3 else spatial(out))}", stage["span"],
                hint="fix the output-size column, or drop the written stride and let the "
                     "column imply it", code="E502")
        return out

    def _search(self, graph, stage, nodes, shape, first) -> int:
        """The stride for `first` that makes the stage end at its annotated size."""
        want, attrs = stage["size"], graph.nodes[first]
        low, high = 1, max(spatial(shape))
        tried = {}
        while low <= high:
            attrs["stride"] = mid = (low + high) // 2
            out = tried[mid] = spatial(_run(graph, nodes, shape, lenient=True))
            if out == tuple(want[-2:]):
                return mid
            if out[0] > want[-2]:
                low = mid + 1
            else:
                high = mid - 1
        near = ", ".join(f"stride {s} gives {format_shape(o)}" for s, o in sorted(tried.items())[:3])
        raise ResdslError(f"no stride turns {format_shape(spatial(shape))} into {format_shape(want[-2:])} in "
                          f"stage {stage['name']}", stage["span"],
                          hint=f"{near}; fix the output-size column", code="E502")


def _run(graph, nodes, shape, lenient=False):
    """The shape after a stage's chain of nodes, starting from `shape`."""
    for node in nodes:
        try:
            shape = output_shape(graph.nodes[node], [shape])
        except ShapeError as error:
            if lenient:
                return (0, 0, 0)
            raise located(graph, node, error) from None
    return shape


def _matches(shape, want) -> bool:
    if len(want) == 3:
        return len(shape) == 3 and tuple(shape) == tuple(want)
    return spatial(shape) == tuple(want)


def _blame_the_input_too(error: ResdslError, graph) -> ResdslError:
    """The first stage's size follows from the input's, so a typo in `input` shows up
    there: say where the input was declared."""
    attrs = graph.nodes["input"]
    where = f" at line {attrs['span'].line}" if attrs["span"].line >= 1 else ""
    hint = f"the input is {format_shape(attrs['shape'])}{where}; {error.hint}"
    return ResdslError(error.message, error.span, hint=hint, code=error.code)
