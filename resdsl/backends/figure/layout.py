"""What a figure shows, apart from how graphviz draws it: one column per network, one box
per layer as the paper labels it (`3x3 conv, 128, /2`, `pool, /2`, `avg pool`, `fc 1000`),
and one arc per residual unit, from the box before the unit to the unit's last box (whose
output the shortcut joins), dotted where the shortcut increases dimensions (Fig. 3). BN, ReLU, additions, dropout and softmax
are not drawn, as in the paper. The family's units add to that: a grouped conv says its
groups (`C=32`), a pre-activation unit's convs say `BN-ReLU` above them, a
squeeze-excitation gate is a box beside its unit's last conv, and an arc names a
pooled projection or a highway gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from resdsl.ir.graph import unit_convs, unit_nodes, unit_shortcut
from resdsl.ops.registry import op
from resdsl.ops.shapes import Shape, spatial


@dataclass
class Box:
    id: str
    label: str
    op: str  # conv, maxpool, avgpool, fc, image, or group (a collapsed run of units)
    shape: Shape  # its output
    repeat: int = 1
    layers: int = 0  # the weighted layers it stands for
    style: dict = field(default_factory=dict)  # its op's graphviz attributes, if any
    node: str = ""  # the IR node it draws (a group: its first unit's)

    @property
    def size(self) -> int:
        """The output size, Fig. 3's rows: 224, 112, 56, 28, 14, 7, and 1 after pooling."""
        return spatial(self.shape)[0]


@dataclass
class Arc:
    tail: str
    head: str
    increases_dimensions: bool  # dotted in the paper
    label: str = ""  # what the shortcut does beyond Fig. 3's (a pool, a gate)


@dataclass
class Side:
    """A box beside the column (a squeeze-excitation gate): fed by `anchor`, whose
    output it scales."""

    box: Box
    anchor: str


@dataclass
class Column:
    title: str
    boxes: list[Box] = field(default_factory=list)
    arcs: list[Arc] = field(default_factory=list)
    sides: list[Side] = field(default_factory=list)

    @property
    def layers(self) -> int:
        return sum(box.layers for box in self.boxes)


def layout(graph: nx.DiGraph, index: int, title: str | None = None,
           collapse: bool = False) -> Column:
    column = Column(title or graph.graph["name"])
    column.boxes.append(Box(f"c{index}_image", "image", "image", graph.nodes["input"]["shape"]))
    units = unit_nodes(graph)
    runs = _runs(graph, units) if collapse else [[unit] for unit in units]
    run_of = {unit: i for i, run in enumerate(runs) for unit in run}
    unit_of_box: list[str | None] = [None]
    preact = graph.graph["config"].preact
    gates = []  # (SE box, the index of the box it sits beside)
    for node in nx.topological_sort(graph):
        attrs = graph.nodes[node]
        if attrs.get("member") == "se.fc1" and not collapse:
            gates.append((_se_box(graph, node, f"c{index}_se{len(gates)}"),
                          len(column.boxes) - 1))
            continue
        if op(attrs["op"]).label is None or attrs.get("branch") not in (None, "residual"):
            continue
        unit = attrs.get("unit")
        box_id = f"c{index}_{len(column.boxes)}"
        if unit is not None and collapse:
            unit = runs[run_of[unit]][0]
            if unit in unit_of_box:
                continue
            box = _group_box(graph, box_id, [units[u] for u in runs[run_of[unit]]])
        else:
            declared = op(attrs["op"])
            label = ("BN-ReLU\n" if preact and unit else "") + _label(attrs)
            box = Box(box_id, label, attrs["op"], attrs["shape"],
                      layers=int(declared.weighted), style=dict(declared.figure_style))
        box.node = node
        column.boxes.append(box)
        unit_of_box.append(unit)
    for unit in dict.fromkeys(u for u in unit_of_box if u is not None):
        shortcut = unit_shortcut(graph, units[unit])
        if shortcut:
            first = unit_of_box.index(unit)
            last = len(unit_of_box) - 1 - unit_of_box[::-1].index(unit)
            column.arcs.append(Arc(column.boxes[first - 1].id, column.boxes[last].id,
                                   shortcut != "identity", _arc_label(graph, units[unit])))
    for box, at in gates:
        column.sides.append(Side(box, column.boxes[at].id))
    return column


def _arc_label(graph: nx.DiGraph, nodes: list[str]) -> str:
    """`avg pool /2` on ResNet-D's pooled projection; `gate` on a highway unit's."""
    words = []
    for node in nodes:
        attrs = graph.nodes[node]
        if attrs.get("member") == "shortcut.pool":
            words.append(f"avg pool /{attrs['stride']}")
        elif attrs.get("member") == "gate.conv":
            words.append("gate")
    return ", ".join(words)


def _se_box(graph: nx.DiGraph, fc1: str, box_id: str) -> Box:
    """Squeeze-excitation as Hu et al. draw it: pool, squeeze, excite, sigmoid."""
    (pool,) = graph.predecessors(fc1)
    (branch,) = graph.predecessors(pool)
    channels, squeeze = graph.nodes[branch]["shape"][0], graph.nodes[fc1]["out_channels"]
    return Box(box_id, f"SE gate\n{channels} → {squeeze} → {channels}", "se",
               graph.nodes[branch]["shape"], style={"style": "rounded,dashed,filled"})


def _label(a: dict) -> str:
    return op(a["op"]).label(a)


def _convs(graph: nx.DiGraph, nodes: list[str]) -> list[dict]:
    return [graph.nodes[conv] for conv in unit_convs(graph, nodes)]


def _signature(graph: nx.DiGraph, nodes: list[str]) -> tuple:
    return (graph.nodes[nodes[0]]["stage"],
            tuple((c["kernel"], c["out_channels"]) for c in _convs(graph, nodes)))


def _runs(graph: nx.DiGraph, units: dict[str, list[str]]) -> list[list[str]]:
    """Consecutive units of one stage with the same convs: what `--collapse` folds."""
    runs: list[list[str]] = []
    for unit, nodes in units.items():
        if runs and _signature(graph, units[runs[-1][-1]]) == _signature(graph, nodes):
            runs[-1].append(unit)
        else:
            runs.append([unit])
    return runs


def _group_box(graph: nx.DiGraph, box_id: str, run: list[list[str]]) -> Box:
    """A run of units (each its nodes) as one box: their convs, then how many blocks and,
    since only the first of them strides, where ("×36 blocks, first /2 on the 1x1")."""
    convs = _convs(graph, run[0])
    last = _convs(graph, run[-1])[-1]
    extras = [text for present, text in (
        (graph.graph["config"].preact, "BN-ReLU before each conv"),
        (any(graph.nodes[n].get("branch") == "se" for n in run[0]), "SE gate"))
        if present]
    if len(run) == 1:
        label = "\n".join([_label(c) for c in convs] + extras)
    else:
        strided = next((c for c in convs if c["stride"] > 1), None)
        where = (f", first /{strided['stride']} on the {strided['kernel']}x{strided['kernel']}"
                 if strided else "")
        label = "\n".join([_label({**c, "stride": 1}) for c in convs] + extras
                          + [f"×{len(run)} blocks{where}"])
    return Box(box_id, label, "group", last["shape"], repeat=len(run),
               layers=len(convs) * len(run))
