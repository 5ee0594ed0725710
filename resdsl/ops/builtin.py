"""The built-in ops, each declared once (see `resdsl.ops.registry` for what the fields mean).

Costs follow the paper: `macs` are the multiply-adds of conv and fc layers only (Table
1's "FLOPs"); `other_ops` counts the element operations of BN, ReLU, add and pooling,
reported only on request. Torch constructions are source text, so the generated file
needs torch alone and this module never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from resdsl.ops.registry import (INPUT, INPUTS, OUTPUT, Arg, Kept, OpDef, keeps, op,
                                per_element, register, same_feature_map)
from resdsl.ops.shapes import Shape, ShapeError, feature_map, numel, spatial, window


def _stride_text(a: Mapping) -> str:
    return f", /{a['stride']}" if a.get("stride", 1) > 1 else ""


def _groups_text(a: Mapping, before: str, after: str) -> str:
    """A grouped conv's groups (ResNeXt's cardinality C), or nothing for one group."""
    return f"{before}{a['groups']}{after}" if a["groups"] > 1 else ""


# --- conv -------------------------------------------------------------------------------

def _conv_shape(a: Mapping, inputs: Sequence[Shape]) -> Shape:
    c, groups = feature_map("conv", inputs[0])[0], a["groups"]
    if c % groups or a["out_channels"] % groups:
        raise ShapeError(f"a conv of {groups} groups needs input and output channels "
                         f"that split into them, not {c} and {a['out_channels']}",
                         hint=_groups_hint(c, a["out_channels"], groups))
    if a["padding"] >= a["kernel"]:
        raise ShapeError(f"padding {a['padding']} on a {a['kernel']}x{a['kernel']} conv "
                         "gives output rows and columns that see only zeros", "E505")
    return (a["out_channels"], *window("conv", inputs[0], a["kernel"], a["stride"], a["padding"]))


def _groups_hint(c: int, out: int, groups: int) -> str:
    """What would split: the widths nearest `out` that are multiples of the groups, and
    the group counts nearest `groups` that the incoming channels allow."""
    def nearest_multiples(n: int) -> str:
        return " or ".join(str(m) for m in sorted({max(n // groups, 1) * groups,
                                                   (n // groups + 1) * groups}))
    fixes = []
    if out % groups:
        fixes.append(f"with C={groups}, the width must be a multiple of {groups}: "
                     f"{nearest_multiples(out)}, not {out}")
    if c % groups:
        divisors = sorted((d for d in range(1, c + 1) if c % d == 0),
                          key=lambda d: (abs(d - groups), d))[:2]
        fixes.append(f"the {c} channels coming in split into "
                     f"{' or '.join(map(str, sorted(divisors)))} groups, or widen the layer "
                     f"before to {nearest_multiples(c)}")
    return "; ".join(fixes)


register(OpDef(
    "conv", "a KxK convolution (Table 1's `3x3, 64`)",
    args=(Arg("kernel", int), Arg("stride", int, 1), Arg("padding", int),
          Arg("out_channels", int), Arg("groups", int, 1), Arg("bias", bool, False)),
    shape=_conv_shape,
    params=lambda a, i, out: (a["out_channels"] * i[0][0] // a["groups"] * a["kernel"] ** 2
                              + (a["out_channels"] if a["bias"] else 0)),
    macs=lambda a, i, out: numel(out) * i[0][0] // a["groups"] * a["kernel"] ** 2,
    torch=lambda a, x: (f"nn.Conv2d({x[0]}, {a['out_channels']}, {a['kernel']}, "
                        f"stride={a['stride']}, padding={a['padding']}, "
                        f"{_groups_text(a, 'groups=', ', ')}bias={bool(a['bias'])})"),
    kept=keeps(INPUT, Kept("own", lambda a, i, out: out[0] * i[0][0] // a["groups"]
                           * a["kernel"] ** 2, "autocast", per_image=False)),
    autocast=True,
    label=lambda a: (f"{a['kernel']}x{a['kernel']} conv, {a['out_channels']}"
                     f"{_groups_text(a, ', C=', '')}{_stride_text(a)}"),
    weighted=True, strided=True))

register(OpDef(
    "bn", "batch normalisation after a conv (sec. 3.4)",
    shape=same_feature_map,
    params=lambda a, i, out: 2 * out[0],  # the affine weight and bias; running stats are buffers
    other_ops=per_element,  # folded into one multiply-add per element
    torch=lambda a, x: f"nn.BatchNorm2d({x[0]})",
    # its input, and the batch's mean and inverse deviation per channel
    kept=keeps(INPUT, Kept("own", lambda a, i, out: 2 * out[0], "float32", per_image=False)),
    buffers=lambda a, out: 4 * 2 * out[0] + 8))  # running mean and variance, batch count


# --- pooling ----------------------------------------------------------------------------

def _pool(kind: str, summary: str, kept: Callable[[Mapping], tuple[Kept, ...]]) -> OpDef:
    def shape(a: Mapping, inputs: Sequence[Shape]) -> Shape:
        x = inputs[0]
        if a["global"]:
            return (feature_map(kind, x)[0], 1, 1)
        if a["padding"] > a["kernel"] // 2:
            raise ShapeError(f"padding {a['padding']} is more than half the "
                             f"{a['kernel']}x{a['kernel']} window")
        return (x[0], *window(kind, x, a["kernel"], a["stride"], a["padding"], a["ceil"]))

    def torch(a: Mapping, x: Shape) -> str:
        name = "Max" if kind == "maxpool" else "Avg"
        if a["global"]:
            return f"nn.Adaptive{name}Pool2d(1)"
        # Caffe's rounding up; an average then divides by the pixels each window covers
        ceil = ", ceil_mode=True" + (", count_include_pad=False" if kind == "avgpool" else "")
        return (f"nn.{name}Pool2d({a['kernel']}, stride={a['stride']}, "
                f"padding={a['padding']}{ceil if a['ceil'] else ''})")

    def label(a: Mapping) -> str:
        if a["global"]:
            return "avg pool" if kind == "avgpool" else "max pool"
        return f"{'avg ' if kind == 'avgpool' else ''}pool{_stride_text(a)}"

    return OpDef(
        kind, summary,
        args=(Arg("kernel", (int, type(None))), Arg("stride", int, 1), Arg("padding", int, 0),
              Arg("global", bool, False), Arg("ceil", bool, False)),
        shape=shape,
        other_ops=lambda a, i, out: numel(i[0]) if a["global"] else numel(out) * a["kernel"] ** 2,
        torch=torch, kept=kept, label=label,
        strided=True)


# a max pool keeps its input and the int64 index of each maximum; a global average pool
# (torch's mean) keeps nothing
register(_pool("maxpool", "max pooling over a KxK window",
               keeps(INPUT, Kept("own", dtype="int64"))))
register(_pool("avgpool", "average pooling; global when it has no window",
               lambda a: () if a["global"] else (INPUT,)))


# --- the rest ---------------------------------------------------------------------------

register(OpDef(
    "fc", "a fully connected layer, flattening what comes before",
    args=(Arg("out_features", int), Arg("bias", bool, True)),
    shape=lambda a, inputs: (a["out_features"],),
    params=lambda a, i, out: numel(i[0]) * a["out_features"] + a["out_features"],
    macs=lambda a, i, out: numel(i[0]) * a["out_features"],
    torch=lambda a, x: f"nn.Linear({numel(x)}, {a['out_features']})",
    kept=keeps(INPUT, Kept("own", lambda a, i, out: numel(i[0]) * a["out_features"],
                           "autocast", per_image=False)),
    autocast=True, label=lambda a: f"fc {a['out_features']}", weighted=True,
    flat_input=True))


def _pad_shape(a: Mapping, inputs: Sequence[Shape]) -> Shape:
    c, h, w = feature_map("pad", inputs[0])
    if a["out_channels"] < c:
        raise ShapeError(f"option A pads channels with zeros, so it cannot go from {c} to "
                         f"{a['out_channels']} channels")
    s = a["stride"]
    return (a["out_channels"], -(-h // s), -(-w // s))


register(OpDef(
    "pad", "option A's shortcut: the identity, strided, with zero channels appended",
    args=(Arg("stride", int), Arg("out_channels", int)), shape=_pad_shape))

register(OpDef("add", "a residual unit's merge: the residual branch plus the shortcut",
               arity=2, other_ops=per_element, in_place=True,
               unit_call=lambda x: f"{x[0]} + {x[1]}",
               unit_update=lambda x: f"{x[0]} += {x[1]}"))
register(OpDef("sigmoid", "the logistic function: squeeze-excitation's and highway's gates",
               other_ops=per_element, torch=lambda a, x: "nn.Sigmoid()", kept=keeps(OUTPUT),
               unit_call=lambda x: f"torch.sigmoid({x[0]})"))
register(OpDef("mul", "squeeze-excitation's scaling: each channel of a branch times its gate",
               args=(Arg("ratio", float),), arity=2, other_ops=per_element, kept=keeps(INPUTS),
               unit_call=lambda x: f"{x[0]} * {x[1]}"))
register(OpDef("highway", "a highway unit's merge, T * F(x) + (1 - T) * x (Srivastava et al., "
               "2015), inputs F(x), x and the gate T", arity=3,
               other_ops=lambda a, i, out: 3 * numel(out),
               kept=keeps(INPUTS, Kept("own")),  # F(x), x, T and 1 - T
               unit_call=lambda x: f"{x[2]} * {x[0]} + (1 - {x[2]}) * {x[1]}"))
register(OpDef("dropout", "dropout with probability p", args=(Arg("p", float, 0.5),),
               torch=lambda a, x: f"nn.Dropout(p={a['p']!r})",
               kept=keeps(Kept("own", dtype="mask"))))
register(OpDef("softmax", "the softmax over classes", torch=lambda a, x: "nn.Softmax(dim=1)",
               left_to_loss=True))
register(OpDef("input", "the network's input", args=(Arg("shape", tuple),), arity=0,
               shape=lambda a, inputs: a["shape"]))
register(OpDef("output", "the network's output"))


def skipped_pixels(a: Mapping, inputs: Sequence[Shape]) -> str | None:
    """Why a window's stride is almost surely a slip, or None: a stride larger than the
    kernel never reads some input pixels. The paper's one such stride, /2 on a 1x1 conv
    (its v1 bottlenecks and projections), is taken as meant."""
    if not op(a["op"]).strided or a.get("kernel") is None:
        return None
    stride, kernel = a["stride"], a["kernel"]
    if stride <= max(kernel, 2):
        return None
    h, w = spatial(inputs[0])
    larger = f", and is larger than its {h}x{w} input" if stride > max(h, w) else ""
    return (f"stride {stride} on a {kernel}x{kernel} {a['op']} never reads {stride - kernel} "
            f"of every {stride} rows and columns{larger}")
