"""Terms → layers: a stage's comma-separated items grouped as Table 1 reads them.

A kernel starts a conv, the number after it is its channel count, and `/2`, `stride 2`,
`pad 1`, `ceil` or an option (`C=32`, `bias=on`, `bn=off`) modifies the layer before it.
A bracket or a named block is a group of residual units: its convs, a `dropout p` between
two of them (Wide ResNet) and a closing `se r` (squeeze-excitation, ratio r).
Any registered op may also be written in the general form `name` or `name(arg=value,
...)` (`frontend/op_form.py`). An activation written right after a conv, an fc or a block
is its activation, in place of the network's `act`: `3x3, 64, silu` is conv, BN, SiLU;
`bottleneck(64) x 3, gelu` activates its units with GELU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from resdsl.errors import ResdslError, Span, did_you_mean
from resdsl.frontend import ast
from resdsl.frontend.evaluate import Number, evaluate, whole
from resdsl.frontend.op_form import names_an_op, op_arguments
from resdsl.ops.registry import op
from resdsl.ops.shapes import format_shape


@dataclass
class Activation:
    """What stands where the paper has a ReLU: an activation op and its arguments."""

    op: str
    args: dict[str, object] = field(default_factory=dict)


@dataclass
class Layer:
    """One layer: a registered op with what the text gave it."""

    op: str  # conv, maxpool, avgpool, fc, relu, softmax, dropout, or any registered op
    span: Span
    kernel: int | None = None
    channels: int | None = None  # conv and fc outputs
    stride: int = 1
    stride_explicit: bool = False
    padding: int | None = None
    p: float | None = None  # dropout
    groups: int = 1  # a conv's `C=32`
    # a conv's `bias=on|off`, `bn=on|off`; None until the front end puts the network's
    # setting there (network._settle_switches)
    bias: bool | None = None
    bn: bool | None = None
    ceil: bool = False  # a pooling window's `ceil`: Caffe's rounding up of the output size
    ratio: float | None = None  # squeeze-excitation's reduction, 1/16 in Hu et al.
    # a conv's or fc's own activation; a conv's is settled like bias and bn
    act: Activation | None = None
    args: dict[str, object] = field(default_factory=dict)  # an op in the general form


@dataclass
class Block:
    """A residual block: its convs (and dropout, se), repeated; the first unit takes the
    stride."""

    op: ClassVar[str] = "block"  # its kind, as a layer's op names a layer's
    span: Span
    body: tuple[Layer, ...]
    repeat: int = 1
    stride: int = 1
    stride_explicit: bool = False
    act: Activation | None = None  # its units' activation, where a conv names none


def group_terms(terms, env: Mapping[str, Number], blocks: Mapping[str, ast.BlockDef],
           block: str | None) -> list[Layer | Block]:
    """Group a stage's (or a block body's) terms into layers. `block` names the block
    whose body this is, or is None at stage level."""
    layers: list[Layer | Block] = []
    for term in terms:
        last = layers[-1] if layers else None
        kind = term.kind
        if kind == "conv":
            layers.append(Layer("conv", term.span, kernel=_square(term)))
        elif kind == "channels" and isinstance(term.value, ast.Var) \
                and names_an_op(term.value.name, env):
            _named_op(layers, term.value.name, op_arguments(term.value.name, (), term.span, env),
                      term.span)
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
        elif kind == "relu":
            _named_op(layers, "relu", {}, term.span)
        elif kind == "softmax":
            layers.append(Layer(kind, term.span))
        elif kind == "dropout":
            p = evaluate(term.value, env) if term.value is not None else 0.5
            if not 0 <= p < 1:
                raise ResdslError(f"dropout probability must be in [0, 1), not {p:g}", term.span,
                                  code="E304")
            layers.append(Layer("dropout", term.span, p=float(p)))
        elif kind == "se":
            if block is None:
                raise ResdslError("`se` belongs inside a residual block: it gates the "
                                  "residual branch before the add", term.span, code="E409",
                                  hint="write it last in the brackets: "
                                       "`[1x1, 64; 3x3, 64; 1x1, 256; se 1/16]`")
            ratio = evaluate(term.value, env)
            if not 0 < ratio <= 1:
                raise ResdslError(f"se takes a reduction ratio in (0, 1], not {ratio:g}",
                                  term.value.span, code="E409",
                                  hint="Hu et al. reduce by 16: `se 1/16`")
            layers.append(Layer("se", term.span, ratio=float(ratio)))
        elif kind == "option":
            _set_option(last, term, env)
        elif kind == "ceil":
            if last is None or last.op not in ("maxpool", "avgpool") or last.kernel is None:
                raise ResdslError("`ceil` must follow a pooling window", term.span, code="E409",
                                  hint="as in Caffe's pool1: `3x3 maxpool, /2, pad 0, ceil`")
            last.ceil = True
        elif kind == "stride":
            _set_stride(last, term, env, block)
        elif kind == "pad":
            if last is None or last.op not in ("conv", "maxpool", "avgpool") or last.kernel is None:
                raise ResdslError("`pad` must follow a conv or a pooling window", term.span,
                                  code="E406")
            last.padding = whole(term.value, env, "padding", minimum=0)
        elif kind == "call" and term.name not in blocks and names_an_op(term.name, env):
            if term.value is not None:
                raise ResdslError(f"'{term.name}' is an op, not a block: it cannot repeat",
                                  term.value.span, code="E407")
            _named_op(layers, term.name, op_arguments(term.name, term.args, term.span, env),
                      term.span)
        elif kind in ("block", "call"):
            if block is not None:
                owner = "a block" if block == "[...]" else f"block '{block}'"
                used = f"block '{term.name}'" if term.kind == "call" else "another block"
                used = "itself" if term.name == block else used
                raise ResdslError(f"{owner} uses {used}: a block holds convolutions, dropout "
                                  "and se, so blocks cannot nest or recurse", term.span,
                                  hint="write the convolutions out, e.g. "
                                       "`block b(w) = [3x3, w; 3x3, w]`", code="E408")
            layers.append(_block(term, env, blocks))
    for layer in layers:
        if layer.op == "conv" and layer.channels is None:
            raise ResdslError("this conv has no channel count", layer.span,
                              hint=f"write `{layer.kernel}x{layer.kernel}, 64`", code="E405")
    if block is not None:
        _check_unit_body(layers)
    return layers


def _named_op(layers: list[Layer | Block], name: str, args: dict, span: Span) -> None:
    """An op written by name: the activation of the conv, fc or block just before it,
    when it is an activation and that one has none yet; else a layer of its own."""
    last = layers[-1] if layers else None
    if op(name).activation and last is not None and last.op in ("conv", "fc", "block") \
            and last.act is None:
        last.act = Activation(name, args)
    else:
        layers.append(Layer(name, span, args=args))


UNIT_LAYERS = ("conv", "dropout", "se")


def _check_unit_body(layers: list[Layer]) -> None:
    """A unit's body: convs, a dropout only between two of them, an se only at the end."""
    for index, layer in enumerate(layers):
        if layer.op not in UNIT_LAYERS:
            hint = (f"an activation goes right after its conv, `3x3, 8, {layer.op}`, or after "
                    f"the block, `[...] x 2, {layer.op}`, for all its units"
                    if op(layer.op).activation else None)
            raise ResdslError(f"a residual block holds convolutions, dropout and se, not "
                              f"{layer.op}", layer.span, hint=hint, code="E408")
        before, after = layers[:index], layers[index + 1:]
        if layer.op == "dropout" and not (any(l.op == "conv" for l in before)
                                          and any(l.op == "conv" for l in after)):
            raise ResdslError("a dropout in a block goes between two of its convs", layer.span,
                              hint="as Wide ResNet's `[3x3, 160; dropout 0.3; 3x3, 160]`",
                              code="E408")
        if layer.op == "se" and (after or not before):
            raise ResdslError("`se` comes last in a block, after its convs", layer.span,
                              hint="`[1x1, 64; 3x3, 64; 1x1, 256; se 1/16]`", code="E409")


def _square(term: ast.Term) -> int:
    kernel = term.kernel
    if len(kernel) != 2 or kernel[0] != kernel[1]:
        raise ResdslError(f"a kernel is square, KxK; '{format_shape(kernel)}' is not", term.span,
                          code="E305")
    if kernel[0] < 1:
        raise ResdslError("a kernel is at least 1x1", term.span, code="E303")
    return kernel[0]


def _set_stride(last: Layer | Block | None, term: ast.Term, env, block: str | None) -> None:
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


# name -> (the layers it applies to, what it sets): `C=32`, `groups=32`, `bias=on`, `bn=off`
OPTIONS = {"C": ("conv", "groups"), "groups": ("conv", "groups"), "bias": ("conv", "bias"),
           "bn": ("conv", "bn")}
SWITCHES = {"on": True, "off": False}


def _set_option(last: Layer | Block | None, term: ast.Term, env) -> None:
    """`C=32` (a grouped conv, ResNeXt's cardinality), `bias=on`, `bn=off`: the layer
    before it, against the network's setting."""
    if term.name not in OPTIONS:
        raise ResdslError(f"unknown layer option '{term.name}'", term.span, code="E409",
                          hint=did_you_mean(term.name, OPTIONS)
                          or f"options are: {', '.join(OPTIONS)} (after a conv)")
    applies, field_name = OPTIONS[term.name]
    if last is None or last.op != applies:
        raise ResdslError(f"`{term.name}=` must follow a {applies}", term.span, code="E409",
                          hint="as in `3x3, 128, C=32` or `7x7, 64, /2, bias=on`")
    if field_name == "groups":
        if last.groups != 1:
            raise ResdslError("this conv already has its groups", term.span, code="E409")
        last.groups = whole(term.value, env, f"{term.name} (the conv's groups)")
        return
    value = term.value
    if not (isinstance(value, ast.Var) and value.name in SWITCHES and value.name not in env):
        raise ResdslError(f"`{term.name}=` is on or off", value.span, code="E409")
    if getattr(last, field_name) is not None:
        raise ResdslError(f"this conv already sets {field_name}", term.span, code="E409")
    setattr(last, field_name, SWITCHES[value.name])


def _block(term: ast.Term, env, blocks: Mapping[str, ast.BlockDef]) -> Block:
    repeat = whole(term.value, env, "a repeat count") if term.value is not None else 1
    if term.kind == "block":
        body = group_terms(term.body, env, blocks, block="[...]")
    else:
        definition = blocks.get(term.name)
        if definition is None:
            raise ResdslError(f"unknown block '{term.name}'", term.span,
                              hint=did_you_mean(term.name, blocks)
                              or "define it first: `block basic(w) = [3x3, w; 3x3, w]`",
                              code="E202")
        if any(isinstance(arg, ast.Keyword) for arg in term.args):
            raise ResdslError(f"block '{term.name}' takes its arguments by position",
                              term.span, hint=f"defined at line {definition.span.line}",
                              code="E205")
        if len(term.args) != len(definition.params):
            raise ResdslError(f"block '{term.name}' takes {len(definition.params)} "
                              f"argument(s), not {len(term.args)}", term.span,
                              hint=f"defined at line {definition.span.line}", code="E205")
        local = dict(env)
        local.update(zip(definition.params, (evaluate(a, env) for a in term.args)))
        body = group_terms(definition.body, local, blocks, block=term.name)
    if not any(layer.op == "conv" for layer in body):
        raise ResdslError("a block needs at least one conv", term.span, code="E408")
    return Block(term.span, tuple(body), repeat)
