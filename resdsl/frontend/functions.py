"""The functions a number may call: the rounding rules of the networks after ResNet,
written as their papers and torchvision write them (`make_divisible(c * 1.4, 8)`,
EfficientNet's `ceil(d * n)`, RegNet's `round(log(w / w0) / log(wm))`). Each is pure
arithmetic on numbers, so the file stays data."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Number = int | float


def make_divisible(value: Number, divisor: Number, minimum: Number | None = None) -> int:
    """The nearest multiple of `divisor` (at least `minimum`, by default `divisor`) that
    is not more than 10% below `value`: torchvision's and timm's `_make_divisible`, which
    MobileNet and EfficientNet round their widths with."""
    floor = divisor if minimum is None else minimum
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * value else rounded)


def _power(base: Number, exponent: Number) -> Number:
    """`base ** exponent`, refused (as an overflow) before Python would spend minutes on
    a whole number of millions of digits: no width needs more than 10^300."""
    if abs(base) > 1 and exponent * math.log10(abs(base)) > 300:
        raise OverflowError("too large")
    return base ** exponent


def _log(value: Number, base: Number = math.e) -> float:
    return math.log(value) / math.log(base) if base != math.e else math.log(value)


@dataclass(frozen=True)
class Function:
    call: Callable[..., Number]
    arities: tuple[int, ...]  # how many arguments it takes
    summary: str


FUNCTIONS = {
    "round": Function(lambda x: int(round(x)), (1,), "the nearest whole number (a half to even)"),
    "ceil": Function(lambda x: int(math.ceil(x)), (1,), "the whole number at or above"),
    "floor": Function(lambda x: int(math.floor(x)), (1,), "the whole number at or below"),
    "log": Function(_log, (1, 2), "the natural logarithm, or with a base: log(x, 2)"),
    "pow": Function(_power, (2,), "x to the power y"),
    "min": Function(min, (2, 3, 4, 5, 6, 7, 8), "the least of its arguments"),
    "max": Function(max, (2, 3, 4, 5, 6, 7, 8), "the greatest of its arguments"),
    "make_divisible": Function(make_divisible, (2, 3), "a width rounded to a multiple: "
                               "make_divisible(value, divisor[, minimum])"),
}
