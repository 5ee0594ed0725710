"""From the IR graph to a plan of torch modules: which layers, which residual units, and
the module path (state-dict name) of each.

A residual or plain unit of the IR (nodes sharing a `unit` scope) becomes one instance of
a generated unit class; every other node becomes a leaf module (`nn.Conv2d`, `nn.ReLU`, ...)
in its stage's `nn.Sequential`. Units whose layers differ only in channel counts and
stride share a class, as torchvision's `BasicBlock` and `Bottleneck` do.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

import networkx as nx

from resdsl.errors import ResdslError, Span
from resdsl.frontend.names import RESERVED, check_stage_name
from resdsl.ir.graph import branch, ordered_inputs, unit_convs, unit_nodes, unit_shortcut
from resdsl.ir.registry import op
from resdsl.ir.shapes import Shape, numel

# What a unit calls its shortcut, and the two modules of a projection, under each naming.
NAMINGS = {"arch": ("shortcut", ("conv", "bn")), "torchvision": ("downsample", ("0", "1"))}


@dataclass(frozen=True)
class UnitKind:
    """What makes two units need different classes (everything but widths and stride)."""

    kernels: tuple[int, ...]
    paddings: tuple[int, ...]
    stride_slot: int  # which conv takes the unit's stride
    residual: bool
    bn: bool
    bias: bool
    # (branch, op) of the residual branch, the merge and what follows it, in data-flow
    # order: the unit's forward is written from these, so it cannot disagree with the graph
    steps: tuple[tuple[str, str], ...]


@dataclass
class Unit:
    path: tuple[str, ...]
    kind: UnitKind
    in_channels: int
    channels: tuple[int, ...]
    stride: int
    shortcut: str  # "identity", "zero-pad", "projection"; "" in a plain unit
    shape: Shape
    projection_bn: bool = False


@dataclass
class Leaf:
    path: tuple[str, ...]
    constructor: str  # the Python expression that builds the module
    shape: Shape


@dataclass
class Plan:
    network: str
    class_name: str
    file: str
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    items: list[Leaf | Unit]
    unit_classes: dict[UnitKind, str]
    shortcut_kinds: dict[UnitKind, tuple[str, ...]]
    shortcut_member: str  # "shortcut" (arch) or "downsample" (torchvision)
    projection_members: tuple[str, str]  # ("conv", "bn") or ("0", "1")
    inference: bool = False  # the fold_batchnorm pass ran: eval-only code is allowed
    folded: list[tuple[str, str]] = field(default_factory=list)  # (conv, bn) module paths
    softmax_left_to_loss: bool = False
    # why the class is not named after the network: (that name, the reason), or None
    renamed: tuple[str, str] | None = None


def make_plan(graph: nx.DiGraph, naming: str = "arch") -> Plan:
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {', '.join(NAMINGS)}, not {naming!r}")
    shortcut_member, projection_members = NAMINGS[naming]
    sequence = _top_level(graph)
    paths = (_arch_paths if naming == "arch" else _torchvision_paths)(graph, sequence)
    items: list[Leaf | Unit] = []
    folded: list[tuple[str, str]] = []
    softmax_dropped = False
    units = unit_nodes(graph)
    output = next(n for n, kind in graph.nodes(data="op") if kind == "output")
    for name, kind in sequence:
        if kind == "unit":
            unit = _unit(graph, units[name], paths[name])
            items.append(unit)
            folded.extend(_unit_folds(graph, units[name], unit, shortcut_member,
                                      projection_members))
            continue
        attrs, declared = graph.nodes[name], op(kind)
        if declared.left_to_loss and graph.has_edge(name, output):
            softmax_dropped = True  # nn.CrossEntropyLoss takes logits, as torchvision's models
            continue
        (source,) = ordered_inputs(graph, name)
        in_shape = graph.nodes[source]["shape"]
        if declared.flat_input and len(in_shape) == 3:
            items.append(Leaf(paths[f"{name}/flatten"], "nn.Flatten()", (numel(in_shape),)))
        items.append(Leaf(paths[name], _constructor(attrs, in_shape), attrs["shape"]))
        if attrs.get("folded_bn"):
            folded.append((".".join(paths[name]), ".".join(paths[attrs["folded_bn"]])))
    kinds = list(dict.fromkeys(item.kind for item in items if isinstance(item, Unit)))
    shortcut_kinds = {k: tuple(sorted({i.shortcut for i in items
                                       if isinstance(i, Unit) and i.kind == k})) for k in kinds}
    out_shape = graph.nodes[output]["shape"]
    unit_classes = _unit_class_names(kinds)
    name, renamed = class_name(graph, set(unit_classes.values()))
    return Plan(
        network=graph.graph["name"], class_name=name, renamed=renamed, file=graph.graph["file"],
        input_shape=graph.nodes["input"]["shape"], output_shape=out_shape,
        params=sum(p for _, p in graph.nodes(data="params")),
        macs=sum(m for _, m in graph.nodes(data="macs")), items=items,
        unit_classes=unit_classes, shortcut_kinds=shortcut_kinds,
        shortcut_member=shortcut_member, projection_members=projection_members,
        inference=bool(graph.graph.get("folded_bn")), folded=folded,
        softmax_left_to_loss=softmax_dropped)


# Every name the generated file defines or imports at module level, besides its classes
# (tests/test_names.py reads generated files to keep this whole).
MODULE_NAMES = frozenset({"torch", "nn", "F", "OrderedDict", "ZeroPadShortcut",
                          "fold_batchnorm", "FOLDED_BN", "BN_EPS"})


def class_name(graph: nx.DiGraph, taken: set[str]) -> tuple[str, tuple[str, str] | None]:
    """`cifar-resnet[n=18]` → `CifarResnetN18`: letters and digits only, so a name from
    the .arch file can never become code; `Net` is appended where that name is one the
    file already uses (a network called `bottleneck` or `f`) or a keyword (`none`), and
    the second value says so."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in graph.graph["name"])
    name = "".join(w[:1].upper() + w[1:] for w in words.split()) or "Network"
    if name[0].isdigit():
        name = "Net" + name
    name += "Folded" if graph.graph.get("folded_bn") else ""
    if keyword.iskeyword(name):  # `true` → `True`
        return name + "Net", (name, "a Python keyword")
    if name in MODULE_NAMES | taken:
        return name + "Net", (name, "taken in this file")
    return name, None


# --- the top-level sequence ---------------------------------------------------------------

def _top_level(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """(name, op) of what the network's forward calls in order: leaf nodes, and each unit
    once (op "unit"), at the place of its first node."""
    sequence, seen_units = [], set()
    for node in nx.topological_sort(graph):
        attrs = graph.nodes[node]
        unit = attrs.get("unit")
        if unit is not None:
            if unit not in seen_units:
                seen_units.add(unit)
                sequence.append((unit, "unit"))
        elif attrs["op"] not in ("input", "output"):
            sequence.append((node, attrs["op"]))
    return sequence


def _arch_paths(graph: nx.DiGraph, sequence) -> dict[str, tuple[str, ...]]:
    """The .arch scopes as module paths: `conv1.conv`, `conv3_x.0`, `head.fc`."""
    spans = {s.name: s.span for s in graph.graph["stages"]}
    paths = {}
    for name, kind in _with_folded_bn(graph, sequence):
        stage, member = name.split(".", 1)
        _check_attribute_name(stage, spans.get(stage))
        paths[name] = (stage, member)
        if kind != "unit" and op(kind).flat_input:
            paths[f"{name}/flatten"] = (stage, "flatten")
    return paths


def _check_attribute_name(stage: str, span: Span | None) -> None:
    """The front end's rule, against the members of the installed torch's nn.Module too."""
    import torch.nn

    members = {name for name in dir(torch.nn.Module()) if not name.startswith("_")}
    check_stage_name(stage, span, RESERVED | members)


TORCHVISION_STEM = {"conv": "conv1", "bn": "bn1", "relu": "relu", "maxpool": "maxpool"}
TORCHVISION_HEAD = ("avgpool", "fc")


def _torchvision_paths(graph: nx.DiGraph, sequence) -> dict[str, tuple[str, ...]]:
    """torchvision's ResNet names: conv1, bn1, relu, maxpool, layer1-4, avgpool, fc."""
    full = list(_with_folded_bn(graph, sequence))
    ops = [kind for _, kind in full]
    units = [i for i, kind in enumerate(ops) if kind == "unit"]
    unit_of = graph.graph["units"]
    stages = list(dict.fromkeys(unit_of[name]["stage"] for name, kind in full if kind == "unit"))
    if (not units or tuple(ops[:units[0]]) != tuple(TORCHVISION_STEM)
            or len(units) != units[-1] - units[0] + 1 or len(stages) != 4
            or tuple(kind for kind in ops[units[-1] + 1:] if not op(kind).left_to_loss)
            != TORCHVISION_HEAD):
        raise ResdslError(
            f"naming='torchvision' fits networks laid out like torchvision's ResNet (conv, "
            f"bn, relu, maxpool, four stages of units, avgpool, fc); {graph.graph['name']} "
            f"is laid out as {', '.join(dict.fromkeys(ops))}", Span(graph.graph["file"], 0, 0),
            hint="use the .arch names (naming='arch', the default)", code="E703")
    paths = {}
    for index, (name, kind) in enumerate(full):
        if kind == "unit":
            paths[name] = (f"layer{stages.index(unit_of[name]['stage']) + 1}",
                           str(unit_of[name]["index"]))
        else:
            paths[name] = (TORCHVISION_STEM[kind] if index < units[0] else kind,)
        if kind != "unit" and op(kind).flat_input:
            paths[f"{name}/flatten"] = ("flatten",)
    return paths


def _with_folded_bn(graph, sequence):
    """The sequence with each folded BN back in its place, so names do not depend on it."""
    for name, kind in sequence:
        yield name, kind
        if kind != "unit" and graph.nodes[name].get("folded_bn"):
            yield graph.nodes[name]["folded_bn"], "bn"


# --- units ----------------------------------------------------------------------------------

def _unit(graph: nx.DiGraph, nodes: list[str], path: tuple[str, ...]) -> Unit:
    """One unit of the graph (its nodes, in data-flow order) as an instance of its kind."""
    convs = unit_convs(graph, nodes)
    (source,) = ordered_inputs(graph, convs[0])
    shortcut = unit_shortcut(graph, nodes)
    attrs = [graph.nodes[c] for c in convs]
    slot = graph.graph["units"][graph.nodes[nodes[0]]["unit"]]["stride_slot"]
    ops_on = {part: [graph.nodes[n]["op"] for n in branch(graph, nodes, part)]
              for part in ("residual", "shortcut")}
    kind = UnitKind(
        kernels=tuple(a["kernel"] for a in attrs), paddings=tuple(a["padding"] for a in attrs),
        stride_slot=slot, residual=bool(shortcut), bn="bn" in ops_on["residual"],
        bias=bool(attrs[0]["bias"]),
        steps=tuple((graph.nodes[n]["branch"], graph.nodes[n]["op"]) for n in nodes
                    if graph.nodes[n]["branch"] != "shortcut"))
    output = [n for n in nodes if graph.nodes[n]["branch"] != "shortcut"][-1]
    return Unit(path, kind, graph.nodes[source]["shape"][0],
                tuple(a["out_channels"] for a in attrs), attrs[slot]["stride"], shortcut,
                graph.nodes[output]["shape"], "bn" in ops_on["shortcut"])


def _unit_folds(graph: nx.DiGraph, nodes: list[str], unit: Unit, member: str,
                projection: tuple[str, str]) -> list[tuple[str, str]]:
    """(conv, bn) module paths for each BN that was folded inside this unit."""
    prefix = ".".join(unit.path)
    folds = [(f"{prefix}.conv{j}", f"{prefix}.bn{j}")
             for j, conv in enumerate(unit_convs(graph, nodes), start=1)
             if graph.nodes[conv].get("folded_bn")]
    folds += [(f"{prefix}.{member}.{projection[0]}", f"{prefix}.{member}.{projection[1]}")
              for node in branch(graph, nodes, "shortcut")
              if graph.nodes[node].get("folded_bn")]
    return folds


KNOWN_UNITS = {(3, 3): "BasicBlock", (1, 3, 1): "Bottleneck"}


def _unit_class_names(kinds: list[UnitKind]) -> dict[UnitKind, str]:
    """The paper's blocks by their torchvision names; others by their kernels."""
    names: dict[UnitKind, str] = {}
    for kind in kinds:
        base = KNOWN_UNITS.get(kind.kernels) or "Block" + "_".join(f"{k}x{k}" for k in kind.kernels)
        base = base if kind.residual else "Plain" + base
        name, n = base, 1
        while name in names.values():
            n += 1
            name = f"{base}{n}"
        names[kind] = name
    return names


# --- leaf modules ---------------------------------------------------------------------------

def _constructor(a: dict, in_shape: Shape) -> str:
    build = op(a["op"]).torch
    if build is None:
        raise ResdslError(f"internal: op '{a['op']}' has no torch module outside a unit",
                          a.get("span"), code="E901")
    return build(a, in_shape)
