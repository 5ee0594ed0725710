"""A residual block's units as IR nodes, each unit described once here as data.

A unit is the nodes that carry its id in `unit`. Each node also carries its `branch` and
its `member`, the name a generated unit class gives its module (`conv1`, `bn1`,
`se.fc1`, `shortcut.conv`):

- "residual": F(x), the block's convs, each with its BN and activation (ReLU unless the
  conv, the block or the network's `act` names another; the last conv's follows the add). In the paper's order
  (sec. 3.2-3.4) that is conv → BN → ReLU, the last BN feeding the merge; with `preact on`
  (He et al., ECCV 2016) it is BN → ReLU → conv, and nothing follows the merge. A
  `dropout` written between two convs runs just before the second. An `se r` closes the
  branch with squeeze-excitation (Hu et al., 2018): global pool → 1x1 conv → ReLU → 1x1
  conv → sigmoid, on branch "se", whose gate scales the branch (`se.scale`).
- "shortcut": what `insert_shortcuts` puts on the identity edge (zero-pad, projection,
  pooled projection); the edge itself is marked `shortcut`.
- "gate": a highway unit's transform gate, sigmoid(1x1 conv(x)) (Srivastava et al., 2015).
- "merge": the add (or the highway's gated sum), and "merged": the ReLU after it.

The graph records each unit's stage, place, strided conv, the span of the block's call,
and with pre-activation the node whose output a projection reads (`graph.graph["units"]`). With shortcuts off
(`shortcut none`) a unit is plain: no merge.
"""

from __future__ import annotations

import networkx as nx

from resdsl.ops.shapes import same_padding

SE_DIVISOR = 8  # timm's make_divisible: SE widths are multiples of 8, at least 8


def se_width(channels: int, ratio: float) -> int:
    """The squeeze width, rounded as timm's SEModule rounds it (make_divisible with
    round_limit 0): to the nearest multiple of 8, at least 8."""
    return max(SE_DIVISOR, int(channels * ratio + SE_DIVISOR / 2) // SE_DIVISOR * SE_DIVISOR)


def stride_slot(kernels: list[int], stride_on: str) -> int:
    """The conv that takes a unit's stride: the first (the paper's v1), or with
    `stride_on 3x3` the first larger than 1x1 (torchvision's v1.5)."""
    if stride_on == "3x3":
        return next((i for i, k in enumerate(kernels) if k > 1), 0)
    return 0


def add_units(graph: nx.DiGraph, tail: str, stage: str, block, config, first: int) -> str:
    """Append `block.repeat` units after `tail`, numbered from `first` in their stage;
    the first takes the block's stride. Returns the last node."""
    convs = [layer for layer in block.body if layer.op == "conv"]
    slot = stride_slot([conv.kernel for conv in convs], config.stride_on)
    units = graph.graph["units"]
    for i in range(block.repeat):
        scope = f"{stage}.{first + i}"
        units[scope] = {"stage": stage, "index": first + i, "stride_slot": slot,
                        "call": block.span}
        tail = _Unit(graph, scope, stage, tail, config).build(block, slot, i == 0)
    return tail


class _Unit:
    """Builds one unit's nodes, chaining each onto the last of its branch."""

    def __init__(self, graph: nx.DiGraph, scope: str, stage: str, unit_input: str, config):
        self.graph, self.scope, self.stage, self.config = graph, scope, stage, config
        self.input = self.tail = unit_input
        self.last_conv = ""

    def add(self, member: str, span, branch: str, inputs=None, **attrs) -> str:
        node = f"{self.scope}.{member}"
        self.graph.add_node(node, scope=node, span=span, stage=self.stage, unit=self.scope,
                            branch=branch, member=member, **attrs)
        for index, source in enumerate(inputs or [self.tail]):
            self.graph.add_edge(source, node, input=index)
        return node

    def chain(self, member: str, span, branch: str = "residual", **attrs) -> str:
        self.tail = self.add(member, span, branch, **attrs)
        return self.tail

    def build(self, block, slot: int, first: bool) -> str:
        config, residual = self.config, self.config.shortcut not in (None, "none")
        convs = [layer for layer in block.body if layer.op == "conv"]
        stride = block.stride if first else 1
        dropout = None
        for layer in block.body:
            if layer.op == "dropout":
                dropout = layer
            elif layer.op == "se":
                self.squeeze_excite(layer)
            else:
                j = convs.index(layer) + 1
                if config.preact:
                    if layer.bn:
                        self.chain(f"bn{j}", layer.span, op="bn")
                    self.activate(layer, j)
                    if j == 1:
                        self.graph.graph["units"][self.scope]["preactivated"] = self.tail
                if dropout is not None:
                    self.chain(f"dropout{j}", dropout.span, op="dropout", p=dropout.p)
                    dropout = None
                self.conv(layer, j, stride if j - 1 == slot else 1, j - 1 == slot and first
                          and block.stride_explicit)
                if not config.preact:
                    if layer.bn:
                        self.chain(f"bn{j}", layer.span, op="bn")
                    if j < len(convs) or not residual:
                        self.activate(layer, j)
        if residual:
            self.merge(block, stride, convs)
        return self.tail

    def activate(self, conv, j: int, branch: str = "residual") -> None:
        """Conv j's activation (`relu1`, `silu1`); the last conv's follows the add."""
        self.chain(f"{conv.act.op}{j}", conv.span, branch=branch, op=conv.act.op, **conv.act.args)

    def conv(self, layer, j: int, stride: int, explicit: bool) -> None:
        padding = layer.padding if layer.padding is not None else same_padding(layer.kernel)
        self.last_conv = self.chain(
            f"conv{j}", layer.span, op="conv", kernel=layer.kernel, stride=stride,
            stride_explicit=explicit, padding=padding, out_channels=layer.channels,
            groups=layer.groups, bias=layer.bias)

    def squeeze_excite(self, layer) -> None:
        """Hu et al. (2018), Fig. 3: the branch's channels scaled by a gate computed from
        their global average (timm's SEModule: 1x1 convs with bias, ReLU, sigmoid)."""
        channels = self.graph.nodes[self.last_conv]["out_channels"]
        branch = self.tail
        self.add("se.pool", layer.span, "se", op="avgpool", kernel=None, stride=1,
                 stride_explicit=False, padding=0, ceil=False, **{"global": True})
        tail = f"{self.scope}.se.pool"
        for member, attrs in (("se.fc1", dict(op="conv", out_channels=se_width(channels, layer.ratio))),
                              ("se.relu", dict(op="relu")),
                              ("se.fc2", dict(op="conv", out_channels=channels)),
                              ("se.gate", dict(op="sigmoid"))):
            if attrs["op"] == "conv":
                attrs.update(kernel=1, stride=1, stride_explicit=False, padding=0, groups=1,
                             bias=True)
            tail = self.add(member, layer.span, "se", inputs=[tail], **attrs)
        self.tail = self.add("se.scale", layer.span, "residual", inputs=[branch, tail],
                             op="mul", ratio=layer.ratio)

    def merge(self, block, stride: int, convs) -> None:
        """The add, with the identity edge marked `shortcut` (insert_shortcuts turns it
        into what the option asks for), and the ReLU after it in the paper's order."""
        branch = self.tail
        if self.config.shortcut == "highway":
            channels = self.graph.nodes[self.last_conv]["out_channels"]
            gate = self.add("gate.conv", block.span, "gate", inputs=[self.input], op="conv",
                            kernel=1, stride=stride, stride_explicit=False, padding=0,
                            out_channels=channels, groups=1, bias=True)
            gate = self.add("gate.sigmoid", block.span, "gate", inputs=[gate], op="sigmoid")
            self.tail = self.add("merge", block.span, "merge", inputs=[branch, self.input, gate],
                                 op="highway")
        else:
            self.tail = self.add("add", block.span, "merge", inputs=[branch, self.input],
                                 op="add")
        self.graph.edges[self.input, self.tail]["shortcut"] = True
        if not self.config.preact:
            self.activate(convs[-1], len(convs), branch="merged")
