"""Columns → a graphviz figure, and the figure → a file.

The columns stand side by side, each under its title. A column of labels on the left
gives the output sizes, and the first box of each size in every column shares its row,
so that the sections line up across networks as in Fig. 3. Shortcut arcs leave and enter
the boxes on the right (below, left to right) and do not take part in the ranking, so they
curve beside the column.
"""

from __future__ import annotations

from pathlib import Path

import graphviz

from resdsl.backends.figure.layout import Column
from resdsl.errors import ResdslError, Span
from resdsl.ops.shapes import format_shape
from resdsl.output import write_atomic

FORMATS = ("svg", "png", "pdf", "dot")
# Fill colours by output size, light enough for black text, in the spirit of Fig. 3.
FILLS = ("#f2f2f2", "#e3d7f0", "#d5ecd4", "#fde2c4", "#d3e4f5", "#f9d5d9", "#fff3bf")
INSTALL_HINT = ("install graphviz's programs: `apt-get install graphviz` (Debian, Ubuntu), "
                "`brew install graphviz` (macOS), `conda install graphviz`, or "
                "https://graphviz.org/download/")


def draw(columns: list[Column], shapes: bool = False, rankdir: str = "TB") -> graphviz.Digraph:
    figure = graphviz.Digraph(
        "resdsl",
        graph_attr=dict(rankdir=rankdir, nodesep="0.35", ranksep="0.14", newrank="true",
                        fontname="Helvetica", bgcolor="white"),
        node_attr=dict(shape="box", style="rounded,filled", fontname="Helvetica",
                       fontsize="11", height="0.28", margin="0.08,0.03", penwidth="0.8"),
        edge_attr=dict(arrowsize="0.5", penwidth="0.8", fontname="Helvetica",
                       fontsize="9"))
    sizes = sorted({box.size for column in columns for box in column.boxes
                    if box.op != "image"}, reverse=True)
    fill = {size: FILLS[min(i + 1, len(FILLS) - 1)] for i, size in enumerate(sizes)}
    _size_labels(figure, sizes)
    port = "e" if rankdir == "TB" else "s"
    for index, column in enumerate(columns):
        figure.node(f"c{index}_title", column.title, shape="plaintext", style="",
                    fontsize="13")
        previous = None
        for box in column.boxes:
            color = FILLS[0] if box.op == "image" else fill[box.size]
            looks = {"fillcolor": color, **({"shape": "plaintext", "style": ""}
                                            if box.op == "image" else {}), **box.style}
            figure.node(box.id, box.label, **looks)  # an op's own style wins
            if previous is None:
                figure.edge(f"c{index}_title", box.id, style="invis")
            else:
                # Short edges within a size, so that a shorter column's slack falls
                # between sections, where Fig. 3 has it.
                weight = "8" if previous.op != "image" and previous.size == box.size else "1"
                figure.edge(previous.id, box.id, weight=weight,
                            **({"label": f" {format_shape(previous.shape)}"} if shapes else {}))
            previous = box
        for arc in column.arcs:
            figure.edge(arc.tail, arc.head, tailport=port, headport=port, constraint="false",
                        style="dotted" if arc.increases_dimensions else "solid",
                        penwidth="1.1", **({"xlabel": arc.label} if arc.label else {}))
        for side in column.sides:  # SE beside its conv: fed by it, scaling its output
            figure.node(side.box.id, side.box.label, fillcolor=fill[side.box.size],
                        fontsize="9", **side.box.style)
            with figure.subgraph() as row:
                row.attr(rank="same")
                row.node(side.anchor)
                row.node(side.box.id)
            figure.edge(side.anchor, side.box.id, constraint="false")
            figure.edge(side.box.id, side.anchor, constraint="false", label="×")
    _align(figure, columns, sizes)
    return figure


def _size_labels(figure: graphviz.Digraph, sizes: list[int]) -> None:
    """The left column: 'output size: 224', then each size, chained invisibly in order."""
    figure.node("size_title", "", shape="plaintext", style="")
    previous = "size_title"
    for size in sizes:
        figure.node(f"size_{size}", f"output size: {size}", shape="plaintext", style="", fontsize="10",
                    fontcolor="#555555")
        figure.edge(previous, f"size_{size}", style="invis")
        previous = f"size_{size}"


def _align(figure: graphviz.Digraph, columns: list[Column], sizes: list[int]) -> None:
    """Titles share the top row and images the next; the first box of each output size
    shares that size's row."""
    with figure.subgraph() as row:
        row.attr(rank="same")
        row.node("size_title")
        for index in range(len(columns)):
            row.node(f"c{index}_title")
    with figure.subgraph() as row:
        row.attr(rank="same")
        for column in columns:
            row.node(column.boxes[0].id)
    for size in sizes:
        with figure.subgraph() as row:
            row.attr(rank="same")
            row.node(f"size_{size}")
            for column in columns:
                first = next((b for b in column.boxes if b.op != "image" and b.size == size),
                             None)
                if first is not None:
                    row.node(first.id)


def write(figure: graphviz.Digraph, path: str | Path) -> None:
    """Write the figure in the format that the extension names; without graphviz's `dot`
    program, write the DOT source beside it and say how to install graphviz."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt in ("dot", "gv"):
        write_atomic(path, figure.source)
        return
    if fmt not in FORMATS:
        raise ResdslError(f"cannot tell the format of {path}: use .svg, .png, .pdf or .dot",
                          code="E701")
    try:
        data = figure.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        source = path.with_suffix(".dot")
        write_atomic(source, figure.source)
        raise ResdslError(f"graphviz's `dot` program was not found, so {path} was not drawn; "
                          f"the figure's DOT source is in {source}", Span(str(path), 0, 0),
                          hint=f"{INSTALL_HINT}; then rerun, or run "
                               f"`dot -T{fmt} {source} -o {path}`", code="E702") from None
    except graphviz.CalledProcessError as error:
        raise ResdslError(f"graphviz's `dot` failed on the figure: {error.stderr!r}",
                          code="E702") from None
    write_atomic(path, data)
