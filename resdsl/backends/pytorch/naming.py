"""Module paths (state-dict names) under each naming: the .arch file's own, torchvision's
ResNet, and timm's ResNet (`resnet.py`) and pre-activation ResNetV2 (`resnetv2.py`).

A naming answers two questions: where each top-level item (a stem layer, a unit, the
head) lives in the network's module tree, and what a unit calls each of its modules
(`bn1`, `downsample.0`, `norm1`). Weights load both ways only when both answers match
the library's own modules exactly; `tests/test_family_parity.py` holds each to that.
"""

from __future__ import annotations

import networkx as nx

from resdsl.errors import ResdslError, Span
from resdsl.frontend.names import RESERVED, check_stage_name
from resdsl.ops.registry import op

NAMINGS = ("arch", "torchvision", "timm")

Path = tuple[str, ...]


def top_level_paths(graph: nx.DiGraph, sequence, naming: str) -> dict[str, Path]:
    """The module path of each item of the network's forward: a leaf node, or a unit
    (op "unit"); flattens, which torch needs before an fc, as `name/flatten`."""
    if naming == "arch":
        return _arch_paths(graph, sequence)
    layout = _Layout(graph, sequence, naming)
    return layout.timm_v2() if naming == "timm" and graph.graph["config"].preact \
        else layout.torchvision()


def fc_as_conv(graph: nx.DiGraph, naming: str) -> bool:
    """timm's ResNetV2 classifies with a 1x1 conv (head.fc), then flattens."""
    return naming == "timm" and graph.graph["config"].preact


def unit_member(member: str, naming: str, preact: bool, pooled: bool) -> str:
    """What a unit calls its module `member` (the .arch name: conv1, bn1, shortcut.conv)."""
    if naming == "arch":
        return member
    group, _, name = member.partition(".")
    if group == "shortcut":
        if naming == "timm" and preact:
            return {"conv": "downsample.conv"}.get(name, member)
        order = ("pool", "conv", "bn") if pooled and naming == "timm" else ("conv", "bn")
        return f"downsample.{order.index(name)}"
    if naming == "timm" and preact and group.startswith("bn"):
        return "norm" + group[2:]
    return member


def shortcut_placeholders(naming: str, preact: bool, pooled: bool) -> tuple[str, ...]:
    """Slots a projection without a pool fills with nn.Identity(): timm's avg-down
    shortcut keeps index 0 for its pool at stride 1 (downsample.1 is the conv)."""
    return ("0",) if naming == "timm" and pooled and not preact else ()


# --- the .arch names --------------------------------------------------------------------

def _arch_paths(graph: nx.DiGraph, sequence) -> dict[str, Path]:
    """The .arch scopes as module paths: `conv1.conv`, `conv3_x.0`, `head.fc`."""
    spans = {s.name: s.span for s in graph.graph["stages"]}
    paths = {}
    for name, kind in sequence:
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


# --- torchvision's and timm's layouts ---------------------------------------------------

class _Layout:
    """A network as stem, four stages of units, and head, the shape both libraries'
    ResNets have; anything else is refused with the layout found."""

    def __init__(self, graph: nx.DiGraph, sequence, naming: str):
        self.graph, self.naming = graph, naming
        self.items = list(sequence)
        ops = [kind for _, kind in self.items]
        units = [i for i, kind in enumerate(ops) if kind == "unit"]
        unit_of = graph.graph["units"]
        self.stages = list(dict.fromkeys(unit_of[n]["stage"] for n, k in self.items
                                         if k == "unit"))
        if not units or len(units) != units[-1] - units[0] + 1 or len(self.stages) != 4:
            self.refuse(ops)
        self.first, self.last = units[0], units[-1]
        self.stem = ops[:self.first]
        self.head = [k for k in ops[self.last + 1:] if not op(k).left_to_loss]

    def refuse(self, ops) -> None:
        library = {"torchvision": "torchvision's ResNet (conv, bn, relu, maxpool, four "
                                  "stages of units, avgpool, fc)",
                   "timm": "timm's ResNet (a stem of convs with BN and ReLU, maxpool, four "
                           "stages of units, avgpool, fc) or ResNetV2 (with preact on: "
                           "conv, maxpool, four stages, bn, relu, avgpool, fc)"}[self.naming]
        raise ResdslError(
            f"naming='{self.naming}' fits networks laid out like {library}; "
            f"{self.graph.graph['name']} is laid out as {', '.join(dict.fromkeys(ops))}",
            Span(self.graph.graph["file"], 0, 0),
            hint="use the .arch names (naming='arch', the default)", code="E703")

    def unit_path(self, name: str) -> Path:
        """layer1.0 (torchvision, timm's ResNet) or stages.0.blocks.0 (timm's ResNetV2)."""
        unit = self.graph.graph["units"][name]
        stage, index = self.stages.index(unit["stage"]), str(unit["index"])
        if self.naming == "timm" and self.graph.graph["config"].preact:
            return ("stages", str(stage), "blocks", index)
        return (f"layer{stage + 1}", index)

    def torchvision(self) -> dict[str, Path]:
        """conv1, bn1, relu, maxpool, layer1-4, avgpool, fc. timm's ResNet is the same,
        but for its deep stem (ResNet-D): conv1 then holds every stem layer but the last
        BN and ReLU, numbered (conv1.0, conv1.1, ... conv1.6)."""
        stem, ops = _as_relu(self.stem), [kind for _, kind in self.items]
        deep = self.naming == "timm" and len(stem) > 4
        if (stem[:-1] != ["conv", "bn", "relu"] * ((len(stem) - 1) // 3)
                or stem[-1:] != ["maxpool"] or (len(stem) != 4 and not deep)
                or self.head != ["avgpool", "fc"]):
            self.refuse(ops)
        paths: dict[str, Path] = {}
        for index, (name, kind) in enumerate(self.items):
            if kind == "unit":
                paths[name] = self.unit_path(name)
            elif index < self.first:
                tail = {len(stem) - 3: ("bn1",), len(stem) - 2: ("act1" if deep else "relu",),
                        len(stem) - 1: ("maxpool",)}
                paths[name] = tail.get(index, ("conv1", str(index)) if deep else ("conv1",))
            else:
                paths[name] = (kind if kind != "avgpool" or self.naming != "timm"
                               else "global_pool",)
            if kind != "unit" and op(kind).flat_input:
                paths[f"{name}/flatten"] = ("flatten",)
        return paths

    def timm_v2(self) -> dict[str, Path]:
        """timm's ResNetV2: stem.conv, stem.pool, stages.N.blocks.M, norm (the BN-ReLU
        after the last unit), head.global_pool, head.fc (a 1x1 conv), head.flatten."""
        ops = [kind for _, kind in self.items]
        between = _as_relu([k for k in ops[self.first:] if k != "unit"])
        if self.stem != ["conv", "maxpool"] or between[:4] != ["bn", "relu", "avgpool", "fc"]:
            self.refuse(ops)
        names = iter([("stem", "conv"), ("stem", "pool")])
        after = iter([("norm",), ("norm_act",), ("head", "global_pool"), ("head", "fc")])
        paths: dict[str, Path] = {}
        for name, kind in self.items:
            if kind == "unit":
                paths[name] = self.unit_path(name)
            elif op(kind).left_to_loss:
                paths[name] = ("head", kind)
            else:
                paths[name] = next(names, None) or next(after)
            if kind == "fc":
                paths[f"{name}/flatten"] = ("head", "flatten")
        return paths


def _as_relu(kinds: list[str]) -> list[str]:
    """The ops with each activation read as ReLU: it has no parameters, so a library's
    layout names it the same whichever it is (torchvision's `relu`, timm's `act1`)."""
    return ["relu" if op(kind).activation else kind for kind in kinds]
