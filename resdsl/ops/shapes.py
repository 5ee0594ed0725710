"""Shapes as the IR writes them, and the arithmetic of windows over them.

Shapes are (C, H, W) for feature maps and (F,) after an fc layer. An op that cannot take
the shape it is given raises `ShapeError`; the pass that asked adds the node's span.
"""

from __future__ import annotations

import math

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """An op cannot take the shape it is given; the calling pass adds the span. `empty`
    marks a window that leaves no output, the one complaint a larger stride can cause
    (so a search over strides may pass over it, and must not pass over the others)."""

    def __init__(self, message: str, code: str = "E501", hint: str | None = None,
                 empty: bool = False):
        super().__init__(message)
        self.code, self.hint, self.empty = code, hint, empty


def conv_size(size: int, kernel: int, stride: int, padding: int, ceil: bool = False) -> int:
    """Rounding down as PyTorch does, or up as Caffe's pooling does (`ceil`); rounded up,
    a last window that would start in the right padding is dropped, as in PyTorch."""
    if not ceil:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


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


def feature_map(op: str, shape: Shape) -> Shape:
    """`shape`, which must be C x H x W for `op`."""
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a feature map (C x H x W), but its input is a "
                         f"{shape[0]}-vector after an fc layer")
    return shape


def window(op: str, shape: Shape, kernel: int, stride: int, padding: int,
           ceil: bool = False) -> tuple[int, int]:
    """The output size of a KxK window slid over `shape`."""
    c, h, w = feature_map(op, shape)
    out = (conv_size(h, kernel, stride, padding, ceil),
           conv_size(w, kernel, stride, padding, ceil))
    if min(out) < 1:
        side = min(h, w)
        raise ShapeError(f"a {kernel}x{kernel} {op} with stride {stride} and padding "
                         f"{padding} has no output on a {h}x{w} input", empty=True,
                         hint=f"pad it by at least {-(-(kernel - side) // 2)}, or use a "
                              f"window of at most {side + 2 * padding}x{side + 2 * padding}")
    return out
