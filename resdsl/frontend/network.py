"""The typed front end's product: a network as a few dataclasses, one per kind (Network,
Stage; `layers.Layer` and `layers.Block`), with every value evaluated and every
whole-network rule checked, before any graph node exists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from resdsl import safety
from resdsl.errors import Diagnostic, ResdslError, Span
from resdsl.frontend.config import Config, check_overrides, parameter_values, resolve_config
from resdsl.frontend.evaluate import Number
from resdsl.frontend.layers import Activation, Block, Layer, group_terms
from resdsl.frontend.lint import unread_overrides, unused_definitions
from resdsl.frontend.names import check_stage_name
from resdsl.frontend.resolve import NetworkSpec
from resdsl.ops.registry import op


@dataclass(frozen=True)
class Stage:
    name: str
    size: tuple[int, ...] | None  # the output-size column, as written
    span: Span
    size_span: Span  # where the column is written (the stage's line when it is not)
    layers: tuple[Layer | Block, ...]


@dataclass(frozen=True)
class Network:
    name: str  # with its --set overrides, as tables show it: cifar-resnet[n=18]
    file: str
    span: Span | None  # the `network` line, for whole-network errors
    config: Config
    params: Mapping[str, Number]
    stages: tuple[Stage, ...]
    warnings: tuple[Diagnostic, ...]  # W101/W102, from the file's own definitions; W105


def network(spec: NetworkSpec, overrides: Mapping[str, object] | None = None) -> Network:
    overrides = dict(overrides or {})
    check_overrides(spec, overrides)
    config = resolve_config(spec, overrides)
    env = parameter_values(spec, overrides, config)
    if not spec.stages:
        raise ResdslError("the network has no stages", spec.span,
                          hint="add a stage line such as `conv1 112x112 : 7x7, 64, /2`",
                          code="E402")
    for stage in spec.stages:
        check_stage_name(stage.name, stage.span)
    stages = tuple(Stage(s.name, s.size, s.span, s.size_span or s.span,
                         tuple(group_terms(s.terms, env, spec.blocks, block=None)))
                   for s in spec.stages)
    layers = [layer for stage in stages for layer in stage.layers]
    if not layers:
        raise ResdslError("the network has no layers: its stages are empty", stages[0].span,
                          hint="write the layers after the colon, e.g. "
                               "`conv1 112x112 : 7x7, 64, /2`", code="E402")
    _require_shortcut_option(layers, config)
    _settings_fit(spec, layers, config)
    _settle_switches(layers, config)
    _within_layer_limit(layers)
    return Network(_display_name(spec.name, overrides), spec.path, spec.span, config, env,
                   stages, (*unused_definitions(spec), *unread_overrides(spec, overrides)))


def _display_name(name: str, overrides: Mapping[str, object]) -> str:
    if not overrides:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in overrides.items())}]"


def _require_shortcut_option(layers, config: Config) -> None:
    if config.shortcut is not None:
        return
    block = next((layer for layer in layers if isinstance(layer, Block)), None)
    if block is not None:
        raise ResdslError("this network has blocks but no shortcut option", block.span,
                          hint="add `shortcut A`, `shortcut B`, `shortcut C` or "
                               "`shortcut none` (a plain network)", code="E403")


def _settings_fit(spec: NetworkSpec, layers, config: Config) -> None:
    """`preact on` reorders units, and `projection pooled` changes projections: refuse
    them where the network has none of what they change."""
    def where(key: str) -> Span | None:
        setting = spec.settings.get(key)
        return setting.span if setting is not None else spec.span

    if config.preact and not any(isinstance(layer, Block) for layer in layers):
        raise ResdslError("`preact on` orders the layers of residual blocks, and this "
                          "network has none", where("preact"), code="E410",
                          hint="write its units as blocks (`[3x3, 16; 3x3, 16] x 3`)")
    if config.projection == "pooled" and config.shortcut not in ("B", "C"):
        raise ResdslError(f"`projection pooled` changes projection shortcuts, and shortcut "
                          f"{config.shortcut} has none", where("projection"), code="E410",
                          hint="use it with `shortcut B` (ResNet-D) or `shortcut C`")


def _settle_switches(layers, config: Config) -> None:
    """Each conv's bias, BN and activation, decided once: its own `bias=`, `bn=` or
    activation, else its block's activation, else the network's setting, so that nothing
    after the front end reads the setting for a layer. An fc keeps only what it was
    written with: it is activated by default only where a weighted layer follows it."""
    default = Activation(config.act, op(config.act).defaults())
    for layer in layers:
        block = isinstance(layer, Block)
        for conv in layer.body if block else (layer,):
            if conv.op == "conv":
                conv.bias = config.bias if conv.bias is None else conv.bias
                conv.bn = config.bn if conv.bn is None else conv.bn
                conv.act = conv.act or (layer.act if block else None) or default


def _within_layer_limit(layers) -> None:
    """Refuse, before any node exists, a network that would expand into more layers than
    the `layers` limit (a repeat of 10^9 would otherwise fill memory with graph nodes).
    Every layer counts, with weights or without: each becomes a node."""
    def expanded(layer) -> int:
        return layer.repeat * len(layer.body) if isinstance(layer, Block) else 1

    total = sum(expanded(layer) for layer in layers)
    if total > safety.current().layers:
        largest = max(layers, key=expanded)
        raise safety.exceeded("layers", f"the network expands into {total:,} layers",
                              largest.span, hint="the largest repeat is here", code="E605")
