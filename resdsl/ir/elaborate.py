"""Elaborate a `NetworkSpec` into the IR graph: terms become layers, layers become nodes.

Terms are grouped as Table 1 reads: a kernel starts a conv, the number after it is its
channel count, and `/2` or `stride 2` modifies the layer before it. A conv brings its BN
(unless `bn off`) and ReLU; an fc brings a ReLU when another weighted layer follows it.
Residual blocks stay single `block` nodes here; `expand_blocks` unrolls them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from resdsl import safety
from resdsl.errors import ResdslError, Span, did_you_mean
from resdsl.frontend import ast
from resdsl.frontend.config import Config, check_overrides, parameter_values, resolve_config
from resdsl.frontend.evaluate import Number, evaluate, whole
from resdsl.frontend.lint import unused_definitions
from resdsl.frontend.resolve import NetworkSpec
from resdsl.ir.ops import format_shape, same_padding

WEIGHTED = ("conv", "fc", "block")


@dataclass
class Layer:
    op: str  # conv, maxpool, avgpool, fc, relu, softmax, dropout, block
    span: Span
    kernel: int | None = None
    channels: int | None = None  # conv and fc outputs
    stride: int = 1
    stride_explicit: bool = False
    padding: int | None = None
    p: float | None = None  # dropout
    body: tuple["Layer", ...] = field(default=())  # block: its convs
    repeat: int = 1


def elaborate(spec: NetworkSpec, overrides: Mapping[str, object] | None = None) -> nx.DiGraph:
    overrides = dict(overrides or {})
    check_overrides(spec, overrides)
    config = resolve_config(spec, overrides)
    env = parameter_values(spec, overrides, config)
    if not spec.stages:
        raise ResdslError("the network has no stages", spec.span,
                          hint="add a stage line such as `conv1 112x112 : 7x7, 64, /2`",
                          code="E402")
    stages = [(stage, _group(stage.terms, env, spec.blocks, block=None)) for stage in spec.stages]
    if not any(layers for _, layers in stages):
        raise ResdslError("the network has no layers: its stages are empty", spec.stages[0].span,
                          hint="write the layers after the colon, e.g. "
                               "`conv1 112x112 : 7x7, 64, /2`", code="E402")
    _require_shortcut_option(stages, config)
    _within_layer_limit(stages)
    graph = nx.DiGraph(name=_display_name(spec.name, overrides), file=spec.path,
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
    total = sum(layer.repeat * len(layer.body) if layer.op == "block" else int(layer.op in WEIGHTED)
                for layer in layers)
    if total > safety.current().layers:
        largest = max(layers, key=lambda layer: layer.repeat * max(len(layer.body), 1))
        raise safety.exceeded("layers", f"the network expands into {total:,} layers", largest.span,
                              hint="the largest repeat is here", code="E605")


# --- terms -> layers ------------------------------------------------------------------

def _group(terms, env: Mapping[str, Number], blocks: Mapping[str, ast.BlockDef],
           block: str | None) -> list[Layer]:
    """Group a stage's (or a block body's) terms into layers. `block` names the block
    whose body this is, or is None at stage level."""
    layers: list[Layer] = []
    for term in terms:
        last = layers[-1] if layers else None
        kind = term.kind
        if kind == "conv":
            layers.append(Layer("conv", term.span, kernel=_square(term)))
        elif kind == "channels":
            channels = whole(term.value, env, "a channel count")
            if last is None or last.op != "conv" or last.channels is not None:
                raise ResdslError("a channel count must follow a kernel", term.span,
                                  hint="a conv reads `3x3, 64`; an fc layer `fc 1000`", code="E405")
            last.channels = channels
        elif kind in ("maxpool", "avgpool"):
            kernel = _square(term) if term.kernel is not None else None
            if kernel is None and kind == "maxpool":
                raise ResdslError("maxpool needs a window size", term.span,
                                  hint="write `3x3 maxpool`; a bare `avgpool` is global",
                                  code="E406")
            layers.append(Layer(kind, term.span, kernel=kernel))
        elif kind == "fc":
            layers.append(Layer("fc", term.span, channels=whole(term.value, env, "fc width")))
        elif kind in ("softmax", "relu"):
            layers.append(Layer(kind, term.span))
        elif kind == "dropout":
            p = evaluate(term.value, env) if term.value is not None else 0.5
            if not 0 <= p < 1:
                raise ResdslError(f"dropout probability must be in [0, 1), not {p:g}", term.span,
                                  code="E304")
            layers.append(Layer("dropout", term.span, p=float(p)))
        elif kind == "stride":
            _set_stride(last, term, env, block)
        elif kind == "pad":
            if last is None or last.op not in ("conv", "maxpool", "avgpool") or last.kernel is None:
                raise ResdslError("`pad` must follow a conv or a pooling window", term.span,
                                  code="E406")
            last.padding = whole(term.value, env, "padding", minimum=0)
        elif kind in ("block", "call"):
            if block is not None:
                owner = "a block" if block == "[...]" else f"block '{block}'"
                used = f"block '{term.name}'" if term.kind == "call" else "another block"
                used = "itself" if term.name == block else used
                raise ResdslError(f"{owner} uses {used}: a block holds convolutions only, "
                                  "so blocks cannot nest or recurse", term.span,
                                  hint="write the convolutions out, e.g. "
                                       "`block b(w) = [3x3, w; 3x3, w]`", code="E408")
            layers.append(_block(term, env, blocks))
    for layer in layers:
        if layer.op == "conv" and layer.channels is None:
            raise ResdslError("this conv has no channel count", layer.span,
                              hint=f"write `{layer.kernel}x{layer.kernel}, 64`", code="E405")
        if block is not None and layer.op != "conv":
            raise ResdslError(f"a residual block holds convolutions only, not {layer.op}",
                              layer.span, code="E408")
    return layers


def _square(term: ast.Term) -> int:
    kernel = term.kernel
    if len(kernel) != 2 or kernel[0] != kernel[1]:
        raise ResdslError(f"a kernel is square, KxK; '{format_shape(kernel)}' is not", term.span,
                          code="E305")
    if kernel[0] < 1:
        raise ResdslError("a kernel is at least 1x1", term.span, code="E303")
    return kernel[0]


def _set_stride(last: Layer | None, term: ast.Term, env, block: str | None) -> None:
    if block is not None:
        raise ResdslError("a stride inside a block would apply to every repeat", term.span,
                          hint="put it after the block (`[3x3, 128; 3x3, 128] x 4, /2`) or "
                               "let the stage's output size imply it", code="E407")
    if last is None or last.op not in ("conv", "maxpool", "avgpool", "block"):
        raise ResdslError("a stride must follow a conv, a pooling window or a block",
                          term.span, hint="as in `7x7, 64, /2` or `3x3 maxpool, /2`", code="E407")
    if last.op == "avgpool" and last.kernel is None:
        raise ResdslError("a global avgpool takes no stride", term.span, code="E407")
    if last.stride_explicit:
        raise ResdslError("this layer already has a stride", term.span, code="E407")
    last.stride = whole(term.value, env, "a stride")
    last.stride_explicit = True


def _block(term: ast.Term, env, blocks: Mapping[str, ast.BlockDef]) -> Layer:
    repeat = whole(term.value, env, "a repeat count") if term.value is not None else 1
    if term.kind == "block":
        body = _group(term.body, env, blocks, block="[...]")
    else:
        definition = blocks.get(term.name)
        if definition is None:
            raise ResdslError(f"unknown block '{term.name}'", term.span,
                              hint=did_you_mean(term.name, blocks)
                              or "define it first: `block basic(w) = [3x3, w; 3x3, w]`",
                              code="E202")
        if len(term.args) != len(definition.params):
            raise ResdslError(f"block '{term.name}' takes {len(definition.params)} "
                              f"argument(s), not {len(term.args)}", term.span,
                              hint=f"defined at line {definition.span.line}", code="E205")
        local = dict(env)
        local.update(zip(definition.params, (evaluate(a, env) for a in term.args)))
        body = _group(definition.body, local, blocks, block=term.name)
    if not body:
        raise ResdslError("a block needs at least one conv", term.span, code="E408")
    return Layer("block", term.span, body=tuple(body), repeat=repeat)


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
                build.append(base + "block" + suffix, layer.span, stage.name,
                             **_block_attrs(layer, config, first_unit=units))
                units += layer.repeat
            else:
                build.append(base + layer.op + suffix, layer.span, stage.name, op=layer.op)
            position += 1
    build.append("output", input_span, None, op="output")


def _weighted_after(layers: list[Layer]) -> list[bool]:
    """For each layer, whether a conv, fc or block comes later in the network."""
    flags, seen = [False] * len(layers), False
    for i in range(len(layers) - 1, -1, -1):
        flags[i] = seen
        seen = seen or layers[i].op in WEIGHTED
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


def _block_attrs(layer: Layer, config: Config, first_unit: int) -> dict:
    body = tuple((conv.kernel, conv.channels,
                  conv.padding if conv.padding is not None else same_padding(conv.kernel))
                 for conv in layer.body)
    stride_index = 0
    if config.stride_on == "3x3":
        stride_index = next((i for i, (k, _, _) in enumerate(body) if k > 1), 0)
    return dict(op="block", body=body, body_spans=tuple(conv.span for conv in layer.body),
                repeat=layer.repeat, stride=layer.stride, stride_explicit=layer.stride_explicit,
                stride_index=stride_index, first_unit=first_unit)
