"""What each IR op does to a tensor's shape, and what it costs.

Shapes are (C, H, W) for feature maps and (F,) after an fc layer. Costs follow the
paper: `macs` are the multiply-adds of conv and fc layers only (Table 1's "FLOPs");
`other_ops` counts the element operations of BN, ReLU, add and pooling, reported
only on request. One table here serves every pass, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """An op cannot take the shape it is given; the calling pass adds the span."""

    def __init__(self, message: str, code: str = "E501"):
        super().__init__(message)
        self.code = code


def conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def same_padding(kernel: int) -> int:
    """torchvision's padding: 3 for 7x7, 1 for 3x3, 0 for 1x1 and 2x2."""
    return (kernel - 1) // 2


def spatial(shape: Shape) -> tuple[int, int]:
    """(H, W); a vector counts as 1x1, as in Table 1's last row."""
    return (shape[1], shape[2]) if len(shape) == 3 else (1, 1)


def format_shape(shape) -> str:
    """A shape or size as the paper writes it: 64x56x56, 28x28."""
    return "x".join(map(str, shape))


def numel(shape: Shape) -> int:
    return math.prod(shape)


def _feature_map(op: str, shape: Shape) -> Shape:
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a feature map (C x H x W), but its input is a "
                         f"{shape[0]}-vector after an fc layer")
    return shape


def _window(op: str, shape: Shape, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    c, h, w = _feature_map(op, shape)
    out = conv_size(h, kernel, stride, padding), conv_size(w, kernel, stride, padding)
    if min(out) < 1:
        raise ShapeError(f"a {kernel}x{kernel} {op} with stride {stride} and padding "
                         f"{padding} has no output on a {h}x{w} input")
    return out


def _block_shape(a: Mapping, shape: Shape) -> Shape:
    """The first unit of a block group: its convs, with the group's stride on one of them."""
    for index, (kernel, channels, padding) in enumerate(a["body"]):
        stride = a["stride"] if index == a["stride_index"] else 1
        h, w = _window("conv", shape, kernel, stride, padding)
        shape = (channels, h, w)
    return shape


def output_shape(a: Mapping, inputs: Sequence[Shape]) -> Shape:
    op = a["op"]
    if op == "input":
        return a["shape"]
    x = inputs[0]
    if op == "conv":
        c = _feature_map(op, x)[0]
        if c % a["groups"]:
            raise ShapeError(f"{c} input channels do not split into {a['groups']} groups")
        if a["padding"] >= a["kernel"]:
            raise ShapeError(f"padding {a['padding']} on a {a['kernel']}x{a['kernel']} conv "
                             "gives output rows and columns that see only zeros", "E505")
        return (a["out_channels"], *_window(op, x, a["kernel"], a["stride"], a["padding"]))
    if op in ("maxpool", "avgpool"):
        if a["global"]:
            return (_feature_map(op, x)[0], 1, 1)
        if a["padding"] > a["kernel"] // 2:
            raise ShapeError(f"padding {a['padding']} is more than half the "
                             f"{a['kernel']}x{a['kernel']} window")
        return (x[0], *_window(op, x, a["kernel"], a["stride"], a["padding"]))
    if op == "fc":
        return (a["out_features"],)
    if op == "pad":
        c, h, w = _feature_map(op, x)
        if a["out_channels"] < c:
            raise ShapeError(f"option A pads channels with zeros, so it cannot go from {c} "
                             f"to {a['out_channels']} channels")
        s = a["stride"]
        return (a["out_channels"], -(-h // s), -(-w // s))
    if op == "block":
        return _block_shape(a, x)
    if op == "bn":
        _feature_map(op, x)
    return x  # bn, relu, dropout, softmax, add (its first input), output


def skipped_pixels(a: Mapping, inputs: Sequence[Shape]) -> str | None:
    """Why a window's stride is almost surely a slip, or None: a stride larger than the
    kernel never reads some input pixels. The paper's one such stride, /2 on a 1x1 conv
    (its v1 bottlenecks and projections), is taken as meant."""
    if a["op"] not in ("conv", "maxpool", "avgpool") or a.get("global"):
        return None
    stride, kernel = a["stride"], a["kernel"]
    if stride <= max(kernel, 2):
        return None
    h, w = spatial(inputs[0])
    larger = f", and is larger than its {h}x{w} input" if stride > max(h, w) else ""
    return (f"stride {stride} on a {kernel}x{kernel} {a['op']} never reads {stride - kernel} "
            f"of every {stride} rows and columns{larger}")


def params(a: Mapping, inputs: Sequence[Shape], out: Shape) -> int:
    op = a["op"]
    if op == "conv":
        weights = a["out_channels"] * inputs[0][0] // a["groups"] * a["kernel"] ** 2
        return weights + (a["out_channels"] if a["bias"] else 0)
    if op == "bn":
        return 2 * out[0]  # the affine weight and bias; running stats are buffers
    if op == "fc":
        return numel(inputs[0]) * a["out_features"] + a["out_features"]
    return 0


def macs(a: Mapping, inputs: Sequence[Shape], out: Shape) -> int:
    op = a["op"]
    if op == "conv":
        return numel(out) * inputs[0][0] // a["groups"] * a["kernel"] ** 2
    if op == "fc":
        return numel(inputs[0]) * a["out_features"]
    return 0


def other_ops(a: Mapping, inputs: Sequence[Shape], out: Shape) -> int:
    """One per element for BN (a folded multiply-add), ReLU and add; one per window
    element for pooling. Counted only when the user asks (`--all-ops`)."""
    op = a["op"]
    if op in ("bn", "relu", "add"):
        return numel(out)
    if op in ("maxpool", "avgpool"):
        return numel(inputs[0]) if a["global"] else numel(out) * a["kernel"] ** 2
    return 0
