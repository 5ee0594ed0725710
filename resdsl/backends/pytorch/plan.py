"""From the IR graph to a plan of torch modules: which layers, which residual units, and
the module path (state-dict name) of each.

A residual or plain unit of the IR (nodes sharing a `unit` scope) becomes one instance of
a generated unit class; every other node becomes a leaf module (`nn.Conv2d`, `nn.ReLU`, ...)
in its stage's `nn.Sequential`. Units whose layers differ only in channel counts and
stride share a class, as torchvision's `BasicBlock` and `Bottleneck` do (unit_plan.py
describes a unit; this module lays out the network and names its classes).
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

import networkx as nx

from resdsl.backends.pytorch.naming import NAMINGS, fc_as_conv, top_level_paths, unit_member
from resdsl.backends.pytorch.unit_plan import Step, Unit, UnitKind, unit_plan
from resdsl.errors import ResdslError
from resdsl.ir.graph import ordered_inputs, unit_nodes
from resdsl.ops.registry import op
from resdsl.ops.shapes import Shape, numel


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
    # each unit class's shortcuts: option ("projection", ...) -> its steps
    shortcut_kinds: dict[UnitKind, dict[str, tuple[Step, ...]]]
    naming: str
    preact: bool
    pooled: bool  # ResNet-D's pooled projections
    inference: bool = False  # the fold_batchnorm pass ran: eval-only code is allowed
    folded: list[tuple[str, str]] = field(default_factory=list)  # (conv, bn) module paths
    softmax_left_to_loss: bool = False
    # why the class is not named after the network: (that name, the reason), or None
    renamed: tuple[str, str] | None = None
    # timm's feature_info: each stage's output as {"num_chs", "reduction", "module"}
    feature_info: list[dict] = field(default_factory=list)


def make_plan(graph: nx.DiGraph, naming: str = "arch") -> Plan:
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {', '.join(NAMINGS)}, not {naming!r}")
    config = graph.graph["config"]
    sequence = _top_level(graph)
    paths = top_level_paths(graph, list(_with_folded_bn(graph, sequence)), naming)
    as_conv = fc_as_conv(graph, naming)
    items: list[Leaf | Unit] = []
    folded: list[tuple[str, str]] = []
    softmax_dropped = False
    units = unit_nodes(graph)
    output = next(n for n, kind in graph.nodes(data="op") if kind == "output")
    member = _member_names(naming, config)
    owners: list[str] = []  # each item's stage, for feature_info
    previous = None
    for name, kind in sequence:
        owners += [previous] * (len(items) - len(owners))  # what the step before added
        previous = (graph.graph["units"][name] if kind == "unit" else graph.nodes[name])["stage"]
        if kind == "unit":
            unit = unit_plan(graph, units[name], paths[name])
            items.append(unit)
            prefix = ".".join(unit.path)
            folded.extend((f"{prefix}.{member(graph.nodes[n]['member'])}",  # the BN is gone
                           f"{prefix}.{member(graph.nodes[n]['folded_bn'][len(name) + 1:])}")
                          for n in units[name] if graph.nodes[n].get("folded_bn"))
            continue
        attrs, declared = graph.nodes[name], op(kind)
        if declared.left_to_loss and graph.has_edge(name, output):
            softmax_dropped = True  # nn.CrossEntropyLoss takes logits, as torchvision's models
            continue
        (source,) = ordered_inputs(graph, name)
        in_shape = graph.nodes[source]["shape"]
        if as_conv and kind == "fc":
            items.append(Leaf(paths[name], f"nn.Conv2d({in_shape[0]}, {attrs['out_features']}, 1)",
                              (attrs["out_features"], 1, 1)))
            items.append(Leaf(paths[f"{name}/flatten"], "nn.Flatten()", attrs["shape"]))
            continue
        if declared.flat_input and len(in_shape) == 3:
            items.append(Leaf(paths[f"{name}/flatten"], "nn.Flatten()", (numel(in_shape),)))
        items.append(Leaf(paths[name], _constructor(attrs, in_shape), attrs["shape"]))
        if attrs.get("folded_bn"):
            folded.append((".".join(paths[name]), ".".join(paths[attrs["folded_bn"]])))
    owners += [previous] * (len(items) - len(owners))
    kinds = list(dict.fromkeys(item.kind for item in items if isinstance(item, Unit)))
    shortcut_kinds = {k: {i.shortcut: i.shortcut_steps for i in items
                          if isinstance(i, Unit) and i.kind == k} for k in kinds}
    shortcut_kinds = {k: dict(sorted(v.items())) for k, v in shortcut_kinds.items()}
    out_shape = graph.nodes[output]["shape"]
    unit_classes = _unit_class_names(kinds, config.preact)
    name, renamed = class_name(graph, set(unit_classes.values()))
    return Plan(
        network=graph.graph["name"], class_name=name, renamed=renamed, file=graph.graph["file"],
        input_shape=graph.nodes["input"]["shape"], output_shape=out_shape,
        params=sum(p for _, p in graph.nodes(data="params")),
        macs=sum(m for _, m in graph.nodes(data="macs")), items=items,
        unit_classes=unit_classes, shortcut_kinds=shortcut_kinds, naming=naming,
        preact=config.preact, pooled=config.projection == "pooled",
        inference=bool(graph.graph.get("folded_bn")), folded=folded,
        softmax_left_to_loss=softmax_dropped, feature_info=_feature_info(graph, items, owners))


def _feature_info(graph: nx.DiGraph, items: list[Leaf | Unit], owners: list[str]) -> list[dict]:
    """What timm's models call `feature_info`, for each stage that ends in a feature map
    (not the head): its channels, its reduction (the input's height over the map's, each
    stage's step rounded to a whole number, so that 225 -> 113 counts as 2, as a stride of
    2 is meant) and the module whose output it is: the shortest path prefix of the
    stage's last item that holds nothing of another stage (`conv2_x` under the .arch
    names, `layer1` and `relu` under torchvision's, `stages.0` under timm's ResNetV2)."""
    stages_under: dict[tuple[str, ...], set[str]] = {}
    last: dict[str, int] = {}
    for index, (item, stage) in enumerate(zip(items, owners)):
        last[stage] = index
        for depth in range(1, len(item.path) + 1):
            stages_under.setdefault(item.path[:depth], set()).add(stage)
    info, reduction, height = [], 1, graph.nodes["input"]["shape"][1]
    for stage in graph.graph["stages"]:
        if stage.name not in last or len(items[last[stage.name]].shape) != 3:
            continue
        item = items[last[stage.name]]
        reduction *= max(1, round(height / item.shape[1]))
        height = item.shape[1]
        depth = next(d for d in range(1, len(item.path) + 1)
                     if stages_under[item.path[:d]] == {stage.name})
        info.append({"num_chs": item.shape[0], "reduction": reduction,
                     "module": ".".join(item.path[:depth])})
    return info


def _member_names(naming: str, config):
    return lambda member: unit_member(member, naming, config.preact,
                                      config.projection == "pooled")


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


def _with_folded_bn(graph, sequence):
    """The sequence with each folded BN back in its place, so names do not depend on it."""
    for name, kind in sequence:
        yield name, kind
        if kind != "unit" and graph.nodes[name].get("folded_bn"):
            yield graph.nodes[name]["folded_bn"], "bn"


KNOWN_UNITS = {(3, 3): "BasicBlock", (1, 3, 1): "Bottleneck"}


def _unit_class_names(kinds: list[UnitKind], preact: bool) -> dict[UnitKind, str]:
    """The paper's blocks by their torchvision names; others by their kernels."""
    names: dict[UnitKind, str] = {}
    for kind in kinds:
        base = KNOWN_UNITS.get(kind.kernels) or "Block" + "_".join(f"{k}x{k}" for k in kind.kernels)
        base = ("PreAct" if preact else "") + base if kind.residual else "Plain" + base
        base += "Projection" if kind.shortcut_source else ""  # it reads the BN-ReLU output
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
