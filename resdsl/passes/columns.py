"""The output-size columns, read by `infer_shapes` before it gives every node its shape:
each is checked, and implies a stage's stride where none is written.

`conv3_x 28x28 : [3x3, 128; 3x3, 128] x 4` after a 56x56 stage needs a stride of 2; the
paper puts it on the stage's first unit (conv3_1). When a stage writes no stride, the
stride of its first strided layer is found by search (output size falls as stride rises);
when it writes one, the column is only checked.

The columns are read at the input size the file declares, so `--set input=` runs the
same strides on another size. A column that implies a stride other than 1 or 2 is almost
surely a typo (no network of the paper has one) and is an error; a column that breaks
the paper's rule "if the feature map size is halved, the number of filters is doubled"
(sec. 3.1) for a stage of units gets a warning. Writing the stride says it is meant.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from resdsl.errors import Diagnostic, ResdslError
from resdsl.ir.graph import ordered_inputs, strided_conv, unit_convs
from resdsl.ops.registry import op, output_shape
from resdsl.ops.shapes import ShapeError, format_shape, spatial
from resdsl.passes.base import inherited, located

def read_columns(graph: nx.DiGraph) -> bool:
    """Stage by stage at the input size the file declares: imply the strides the columns
    ask for, judge them (E504, W104), and check every column (E502). When that size is
    the one the network runs at, the walk's shapes are the nodes' shapes, and are written
    (True is returned): the graph is then walked once, not twice."""
    return _Columns().read(graph)


class _Columns:
    def read(self, graph: nx.DiGraph) -> bool:
        config = graph.graph["config"]
        shape = config.written_input or config.input_shape
        self.write = shape == config.input_shape
        by_stage: dict[str, list[str]] = {}
        for node in graph.nodes:  # elaboration adds nodes in data-flow order, as a chain
            if graph.nodes[node]["stage"] is not None:
                by_stage.setdefault(graph.nodes[node]["stage"], []).append(node)
        before = _Before(graph)
        for stage in graph.graph["stages"]:
            nodes = by_stage.get(stage.name, [])
            implied = self._imply(graph, stage, nodes, shape, before)
            out = self._check(graph, stage, nodes, shape, before)
            if implied is not None:
                _judge(graph, stage, nodes, implied, shape, before)
            before.passed(stage, nodes)
            shape = out
        return self.write

    def _imply(self, graph, stage, nodes, shape, before) -> str | None:
        """Give the stage's first strided layer the stride its column implies; that
        layer, or None when the stage writes a stride or no column."""
        if stage.size is None or any(graph.nodes[n].get("stride_explicit") for n in nodes):
            return None
        first = next((_strided(graph, nodes, n) for n in nodes
                      if graph.nodes[n].get("unit") or (op(graph.nodes[n]["op"]).strided
                                                        and not graph.nodes[n].get("global"))),
                     None)
        if first is not None:
            graph.nodes[first]["stride"] = self._search(graph, stage, nodes, shape, first, before)
        return first

    def _check(self, graph, stage, nodes, shape, before):
        want, out = stage.size, _run(graph, nodes, shape, write=self.write)
        if want is not None and not _matches(out, want):
            written = any(graph.nodes[n].get("stride_explicit") for n in nodes)
            raise ResdslError(
                f"stage {stage.name} is annotated {format_shape(want)} but its layers give "
                f"{format_shape(out if len(want) == 3 else spatial(out))}", stage.size_span,
                hint=_hint(graph, stage, f"{before.came(shape)}: fix the output-size column or the layers"
                           + (", or drop the written stride and let the column imply it"
                              if written else "")), code="E502")
        return out

    def _search(self, graph, stage, nodes, shape, first, before) -> int:
        """The smallest stride for `first` that makes the stage end at its annotated size.
        A layer that fails at stride 1 fails at every stride (its groups do not split, its
        window is larger than the map), and is reported as itself, not as the column."""
        want, attrs = stage.size, graph.nodes[first]
        attrs["stride"] = 1
        _run(graph, nodes, shape)
        low, high, found = 1, max(spatial(shape)), None
        while low <= high:  # the smallest: a ceil-mode pool can reach a size at 2 and 3
            attrs["stride"] = mid = (low + high) // 2
            out = spatial(_run(graph, nodes, shape, lenient=True))
            if out == tuple(want[-2:]):
                found = mid
            if out[0] > want[-2]:
                low = mid + 1
            else:
                high = mid - 1
        if found is not None:
            attrs["stride"] = found
            return found
        near = []  # the search ends between the two strides that bracket the wanted size
        for stride in sorted({max(high, 1), low}):
            attrs["stride"] = stride
            near.append(f"stride {stride} gives "
                        f"{format_shape(spatial(_run(graph, nodes, shape, lenient=True)))}")
        near = ", ".join(near)
        raise ResdslError(f"no stride turns {format_shape(spatial(shape))} into "
                          f"{format_shape(want[-2:])} in stage {stage.name}",
                          stage.size_span, code="E502",
                          hint=_hint(graph, stage, f"{before.came(shape)}; {near}: fix a column"))


class _Before:
    """What the stages so far left behind, for judging the next column: where the map
    came from (the stage before, or the input) and the width of the last unit."""

    def __init__(self, graph):
        self.graph = graph
        span = graph.graph["config"].input_span  # a typo in `input` shows at the first stage
        self.origin = f"the input at {self._line(span)} is" if span else "the input is"
        self.unit_width: int | None = None

    def _line(self, span) -> str:
        """A line of the file being compiled, or of the file it extends that wrote it."""
        file = "" if span.file == self.graph.graph["file"] else f"{Path(span.file).name} "
        return f"{file}line {span.line}"

    def came(self, shape) -> str:
        return f"{self.origin} {format_shape(spatial(shape))}"

    def passed(self, stage, nodes) -> None:
        self.origin = f"{stage.name} ({self._line(stage.span)}) ends at"
        units = [n for n in nodes if self.graph.nodes[n].get("unit")]
        if units:
            self.unit_width = _unit_width(self.graph, nodes, self.graph.nodes[units[-1]]["unit"])


def _judge(graph, stage, nodes, node, shape, before: _Before) -> None:
    """Refuse an implied stride other than 1 or 2; warn where the column halves the map
    without widening the units, or widens them without halving the map."""
    attrs, size = graph.nodes[node], format_shape(stage.size[-2:])
    stride, came = attrs["stride"], before.came(shape)
    if stride > 2:
        attrs["stride"] = 2
        halved = format_shape(spatial(_run(graph, nodes, shape, lenient=True)))
        attrs["stride"] = stride
        raise ResdslError(
            f"the output-size column {size} implies stride {stride} for {_what(graph, node)}",
            stage.size_span,
            hint=_hint(graph, stage,
                       f"{came}, and stride 2 would give {halved}: if one of these columns is "
                       f"a typo, fix it; if stride {stride} is meant, write `/{stride}` after "
                       f"the {'block' if attrs.get('unit') else 'layer'}"),
            code="E504")
    if not attrs.get("unit"):
        return
    width, was = _unit_width(graph, nodes, attrs["unit"]), before.unit_width
    if stride == 2 and width <= (was if was is not None else shape[0]):
        message = (f"{stage.name}'s column halves the map to {size} but its units stay "
                   f"{width} wide")
    elif stride == 1 and was is not None and width > was:
        message = (f"{stage.name}'s units widen from {was} to {width} but its column "
                   f"keeps the map at {size}")
    else:
        return
    graph.graph["warnings"].append(Diagnostic(
        "W104", message + "; the paper doubles the width where it halves the map (sec. 3.1)",
        stage.size_span, severity="warning",
        hint=_hint(graph, stage, f"{came}: if this column, the one before or a width is a "
                   f"typo, fix it; if the stride {stride} is meant, write `/{stride}` after "
                   "the block")))


def _hint(graph, stage, text: str) -> str:
    """A column's hint, saying which file wrote the column when a child file fails."""
    return "; ".join(filter(None, [text, inherited(graph, stage.size_span, "this column")]))


def _what(graph, node) -> str:
    attrs = graph.nodes[node]
    return f"the first unit of {attrs['stage']}" if attrs.get("unit") else node


def _strided(graph, nodes, node) -> str:
    """The node that takes the stride for `node`: itself, or its unit's strided conv."""
    unit = graph.nodes[node].get("unit")
    return node if unit is None else strided_conv(graph, _members(graph, nodes, unit))


def _unit_width(graph, nodes, unit) -> int:
    """A unit's width: its first conv's channels (a bottleneck's inner width)."""
    return graph.nodes[unit_convs(graph, _members(graph, nodes, unit))[0]]["out_channels"]


def _members(graph, nodes, unit) -> list[str]:
    """The unit's nodes among a stage's."""
    return [n for n in nodes if graph.nodes[n].get("unit") == unit]


def _run(graph, nodes, shape, lenient=False, write=False):
    """The shape after a stage's nodes, starting from `shape` (what enters the stage);
    a node reads its inputs' shapes, so a unit's side branch (SE, a highway gate) is
    followed too. With `write`, each node's shape is written on it."""
    shapes = {}
    for node in nodes:
        inputs = [shapes.get(u, shape) for u in ordered_inputs(graph, node)]
        try:
            shapes[node] = output_shape(graph.nodes[node], inputs)
            if write:
                graph.nodes[node]["shape"] = shapes[node]
        except ShapeError as error:
            if lenient and error.empty:  # this stride leaves no output
                return (0, 0, 0)
            raise located(graph, node, error) from None
    return shapes[nodes[-1]] if nodes else shape


def _matches(shape, want) -> bool:
    if len(want) == 3:
        return len(shape) == 3 and tuple(shape) == tuple(want)
    return spatial(shape) == tuple(want)

