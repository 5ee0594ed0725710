"""Elaborate a `NetworkSpec` into the IR graph: terms become layers (`frontend.layers`),
layers become nodes.

A conv brings its BN (unless `bn off`) and ReLU; an fc brings a ReLU when another
weighted layer follows it. A residual block becomes its units (`ir/units.py`). An op
in the general form becomes one node with its arguments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
import networkx as nx

from resdsl import safety
from resdsl.errors import ResdslError, Span
from resdsl.frontend.config import Config, check_overrides, parameter_values, resolve_config
from resdsl.frontend.layers import Layer, group_terms
from resdsl.frontend.lint import unused_definitions
from resdsl.frontend.resolve import NetworkSpec
from resdsl.ir.registry import op
from resdsl.ir.shapes import same_padding
from resdsl.ir.units import add_units

def elaborate(spec: NetworkSpec, overrides: Mapping[str, object] | None = None) -> nx.DiGraph:
    overrides = dict(overrides or {})
    check_overrides(spec, overrides)
    config = resolve_config(spec, overrides)
    env = parameter_values(spec, overrides, config)
    if not spec.stages:
        raise ResdslError("the network has no stages", spec.span,
                          hint="add a stage line such as `conv1 112x112 : 7x7, 64, /2`",
                          code="E402")
    stages = [(stage, group_terms(stage.terms, env, spec.blocks, block=None)) for stage in spec.stages]
    if not any(layers for _, layers in stages):
        raise ResdslError("the network has no layers: its stages are empty", spec.stages[0].span,
                          hint="write the layers after the colon, e.g. "
                               "`conv1 112x112 : 7x7, 64, /2`", code="E402")
    _require_shortcut_option(stages, config)
    _within_layer_limit(stages)
    graph = nx.DiGraph(units={}, name=_display_name(spec.name, overrides), file=spec.path,
                       config=config, params=env, warnings=unused_definitions(spec),
                       stages=[{"name": s.name, "size": s.size, "span": s.span,
                                "size_span": s.size_span or s.span} for s, _ in stages])
    _emit(graph, stages, config)
    return graph


def _display_name(name: str, overrides: Mapping[str, object]) -> str:
    if not overrides:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in overrides.items())}]"


def _require_shortcut_option(stages, config: Config) -> None:
    if config.shortcut is not None:
        return
    for _, layers in stages:
        for layer in layers:
            if layer.op == "block":
                raise ResdslError("this network has blocks but no shortcut option", layer.span,
                                  hint="add `shortcut A`, `shortcut B`, `shortcut C` or "
                                       "`shortcut none` (a plain network)", code="E403")


def _within_layer_limit(stages) -> None:
    """Refuse, before any node exists, a network that would expand into more layers than
    the `layers` limit (a repeat of 10^9 would otherwise fill memory with graph nodes)."""
    layers = [layer for _, stage_layers in stages for layer in stage_layers]
    total = sum(layer.repeat * len(layer.body) if layer.op == "block" else int(op(layer.op).weighted)
                for layer in layers)
    if total > safety.current().layers:
        largest = max(layers, key=lambda layer: layer.repeat * max(len(layer.body), 1))
        raise safety.exceeded("layers", f"the network expands into {total:,} layers", largest.span,
                              hint="the largest repeat is here", code="E605")


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


def _emit(graph: nx.DiGraph, stages, config: Config) -> None:
    build = _Builder(graph)
    input_span = config.input_span or Span(graph.graph["file"], 0, 0)
    build.append("input", input_span, None, op="input", shape=config.input_shape)
    all_layers = [layer for _, layers in stages for layer in layers]
    weighted_after = _weighted_after(all_layers)
    position = 0
    for stage, layers in stages:
        counts = Counter(layer.op for layer in layers)
        seen: Counter = Counter()
        units = 0
        for layer in layers:
            seen[layer.op] += 1
            suffix = str(seen[layer.op]) if counts[layer.op] > 1 else ""
            base = f"{stage.name}."
            if layer.op == "conv":
                build.append(base + "conv" + suffix, layer.span, stage.name, **_conv(layer, config))
                if config.bn:
                    build.append(base + "bn" + suffix, layer.span, stage.name, op="bn")
                build.append(base + "relu" + suffix, layer.span, stage.name, op="relu")
            elif layer.op in ("maxpool", "avgpool"):
                build.append(base + layer.op + suffix, layer.span, stage.name, **_pool(layer))
            elif layer.op == "fc":
                build.append(base + "fc" + suffix, layer.span, stage.name, op="fc",
                             out_features=layer.channels, bias=True)
                if weighted_after[position]:
                    build.append(base + "relu" + suffix, layer.span, stage.name, op="relu")
            elif layer.op == "dropout":
                build.append(base + "dropout" + suffix, layer.span, stage.name, op="dropout",
                             p=layer.p)
            elif layer.op == "block":
                build.tail = add_units(graph, build.tail, stage.name, layer, config, units)
                units += layer.repeat
            else:
                build.append(base + layer.op + suffix, layer.span, stage.name, op=layer.op,
                             **layer.args)
            position += 1
    build.append("output", input_span, None, op="output")


def _weighted_after(layers: list[Layer]) -> list[bool]:
    """For each layer, whether a conv, fc or block comes later in the network."""
    flags, seen = [False] * len(layers), False
    for i in range(len(layers) - 1, -1, -1):
        flags[i] = seen
        seen = seen or layers[i].op == "block" or op(layers[i].op).weighted
    return flags


def _conv(layer: Layer, config: Config) -> dict:
    padding = layer.padding if layer.padding is not None else same_padding(layer.kernel)
    return dict(op="conv", kernel=layer.kernel, stride=layer.stride,
                stride_explicit=layer.stride_explicit, padding=padding,
                out_channels=layer.channels, groups=1, bias=config.bias)


def _pool(layer: Layer) -> dict:
    if layer.kernel is None:
        return dict(op=layer.op, kernel=None, stride=1, stride_explicit=False, padding=0,
                    **{"global": True})
    padding = layer.padding if layer.padding is not None else same_padding(layer.kernel)
    return dict(op=layer.op, kernel=layer.kernel, stride=layer.stride,
                stride_explicit=layer.stride_explicit, padding=padding, **{"global": False})
