"""Elaborate a network into the IR graph: the typed front end (`frontend/network.py`)
gives its stages and layers; here each layer becomes its nodes.

A conv brings its BN (unless `bn off`) and its activation (the network's `act`, ReLU
unless it says otherwise); an fc brings one when another weighted layer follows it, or
when one is written after it. A residual block becomes its units (`ir/units.py`). An op
in the general form becomes one node with its arguments. With `preact on` (He et al.,
ECCV 2016) the first unit's BN-ReLU acts on the stem's last conv, which so has none of
its own, and one BN-ReLU follows the last unit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import networkx as nx

from resdsl.errors import Span
from resdsl.frontend.config import Config
from resdsl.frontend.layers import Activation, Block, Layer
from resdsl.frontend.network import Stage, network
from resdsl.frontend.resolve import NetworkSpec
from resdsl.ops.registry import op
from resdsl.ops.shapes import same_padding
from resdsl.ir.units import add_units

def elaborate(spec: NetworkSpec, overrides: Mapping[str, object] | None = None) -> nx.DiGraph:
    """The IR graph of a network: the typed front end's Network, a node per op."""
    net = network(spec, overrides)
    graph = nx.DiGraph(units={}, name=net.name, file=net.file, config=net.config,
                       params=dict(net.params), warnings=list(net.warnings),
                       stages=list(net.stages))
    _emit(graph, net.stages, net.config)
    return graph


# --- layers -> nodes ------------------------------------------------------------------

class _Builder:
    """Appends nodes to the chain, naming each `stage.op`, numbered when a stage has several."""

    def __init__(self, graph: nx.DiGraph):
        self.graph = graph
        self.tail: str | None = None

    def append(self, name: str, span: Span, stage: str | None, **attrs) -> str:
        unique, n = name, 1
        while unique in self.graph:
            n += 1
            unique = f"{name}_{n}"
        self.graph.add_node(unique, scope=unique, span=span, stage=stage, **attrs)
        if self.tail is not None:
            self.graph.add_edge(self.tail, unique, input=0)
        self.tail = unique
        return unique


def _emit(graph: nx.DiGraph, stages: tuple[Stage, ...], config: Config) -> None:
    build = _Builder(graph)
    input_span = config.input_span or Span(graph.graph["file"], 0, 0)
    build.append("input", input_span, None, op="input", shape=config.input_shape)
    all_layers = [layer for stage in stages for layer in stage.layers]
    weighted_after = _weighted_after(all_layers)
    blocks = [i for i, layer in enumerate(all_layers) if isinstance(layer, Block)]
    bare = set()  # preact: the stem's last conv, activated by the first unit
    if config.preact and blocks:
        stem = [i for i in range(blocks[0]) if all_layers[i].op == "conv"]
        bare = set(stem[-1:])
    position = 0
    for stage in stages:
        counts = Counter(layer.op for layer in stage.layers)
        seen: Counter = Counter()
        units = 0
        for layer in stage.layers:
            seen[layer.op] += 1
            suffix = str(seen[layer.op]) if counts[layer.op] > 1 else ""
            base = f"{stage.name}."
            if layer.op == "conv":
                build.append(base + "conv" + suffix, layer.span, stage.name, **_conv(layer))
                if position not in bare:
                    if layer.bn:
                        build.append(base + "bn" + suffix, layer.span, stage.name, op="bn")
                    _activate(build, base, suffix, layer.span, stage.name, layer.act)
            elif layer.op in ("maxpool", "avgpool"):
                build.append(base + layer.op + suffix, layer.span, stage.name, **_pool(layer))
            elif layer.op == "fc":
                build.append(base + "fc" + suffix, layer.span, stage.name, op="fc",
                             out_features=layer.channels, bias=True)
                act = layer.act or (Activation(config.act, op(config.act).defaults())
                                    if weighted_after[position] else None)
                if act is not None:
                    _activate(build, base, suffix, layer.span, stage.name, act)
            elif layer.op == "dropout":
                build.append(base + "dropout" + suffix, layer.span, stage.name, op="dropout",
                             p=layer.p)
            elif isinstance(layer, Block):
                build.tail = add_units(graph, build.tail, stage.name, layer, config, units)
                units += layer.repeat
                if config.preact and position == blocks[-1]:
                    if config.bn:
                        build.append(base + "bn", layer.span, stage.name, op="bn")
                    last_conv = [conv for conv in layer.body if conv.op == "conv"][-1]
                    _activate(build, base, "", layer.span, stage.name, last_conv.act)
            else:
                build.append(base + layer.op + suffix, layer.span, stage.name, op=layer.op,
                             **layer.args)
            position += 1
    build.append("output", input_span, None, op="output")


def _activate(build: _Builder, base: str, suffix: str, span: Span, stage: str,
              act: Activation) -> None:
    """The activation node after a layer, named for its op (`conv1.relu`, `conv1.silu`)."""
    build.append(base + act.op + suffix, span, stage, op=act.op, **act.args)


def _weighted_after(layers: list[Layer | Block]) -> list[bool]:
    """For each layer, whether a conv, fc or block comes later in the network."""
    flags, seen = [False] * len(layers), False
    for i in range(len(layers) - 1, -1, -1):
        flags[i] = seen
        seen = seen or isinstance(layers[i], Block) or op(layers[i].op).weighted
    return flags


def _conv(layer: Layer) -> dict:
    padding = layer.padding if layer.padding is not None else same_padding(layer.kernel)
    return dict(op="conv", kernel=layer.kernel, stride=layer.stride,
                stride_explicit=layer.stride_explicit, padding=padding,
                out_channels=layer.channels, groups=layer.groups,
                bias=layer.bias)


def _pool(layer: Layer) -> dict:
    if layer.kernel is None:
        return dict(op=layer.op, kernel=None, stride=1, stride_explicit=False, padding=0,
                    ceil=False, **{"global": True})
    padding = layer.padding if layer.padding is not None else same_padding(layer.kernel)
    return dict(op=layer.op, kernel=layer.kernel, stride=layer.stride,
                stride_explicit=layer.stride_explicit, padding=padding, ceil=layer.ceil,
                **{"global": False})
