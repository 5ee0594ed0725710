"""Random valid networks, for the property-based tests (`tests/test_fuzz.py`, driven by
hypothesis) and the long campaign (`benchmarks/fuzz_campaign.py`, by seed): a failing case
is reproduced by its seed alone. `random_network` writes .arch text that must build, and
over its draws every construct of the language (test_fuzz.py's CONSTRUCTS finds each):
the shortcut options, `preact on`, `projection pooled`, named and inline blocks, grouped
convs, se, dropout in a block, ceil-mode pooling, `bias=`/`bn=` on a layer, `act` and an
activation after a conv, in a block and after one, `/` and `//`, columns that imply or
check a stride, odd input sizes, `extends`; it keeps to the rules by following each
stage's channels and map size. `check_network` (`tests/fuzz_checks.py`) holds the built
network to torch; the corruptions and hostile cases are in `tests/fuzzing.py`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

ACTS = ("relu", "relu6", "silu", "gelu", "hardswish")
SIZES = (8, 9, 12, 13, 16, 17, 23, 32, 33)
# a block's convs, (kernel, width as a multiple of its argument c)
BODIES = {"basic": ((3, 1), (3, 1)), "bottleneck": ((1, 1), (3, 1), (1, 4)),
          "single": ((3, 1),), "wide": ((1, 1), (5, 1)), "next": ((1, 1), (3, 1), (1, 2))}
WIDTHS = {"w": lambda w: w, "2*w": lambda w: 2 * w, "2*w + 2": lambda w: 2 * w + 2,
          "4w": lambda w: 4 * w, "w*4": lambda w: 4 * w, "6*w / 3": lambda w: 2 * w,
          "w * 3 // 2": lambda w: w * 3 // 2, "(w + 1) // 2 * 2": lambda w: (w + 1) // 2 * 2}
REPEATS = ("1", "2", "n", "n + 1", "(n + 1) // 2", "2*n / 2")
# a pooling window at the head of a stage: its text, options, kernel, padding, ceil mode
POOLS = (("3x3 maxpool", ["pad 0", "ceil"], 3, 0, True), ("2x2 avgpool", ["ceil"], 2, 0, True),
         ("3x3 avgpool", ["ceil"], 3, 1, True), ("3x3 maxpool", [], 3, 1, False))


@dataclass
class Network:
    """A generated network: its text, the parent it extends (or None), and what it is."""

    text: str
    parent: str | None
    summary: str


@dataclass
class _Layer:
    """A layer as written: its leading text and the options after it (a stride goes in
    among them), and its window, for the map size."""

    head: str
    options: list[str]
    kernel: int = 3
    pad: int = 1
    ceil: bool = False

    def text(self, rng, stride: str | None) -> str:
        options = list(self.options)
        if stride:
            options.insert(rng.randint(0, len(options)), stride)
        return ", ".join([self.head, *options])


@dataclass
class _Draw:
    """What the generator knows as it writes: the constraints, the parameters' values,
    the blocks defined, and the channels and map size the layers so far produce."""

    rng: random.Random
    shortcut: str
    preact: bool
    w: int
    g: int  # the groups of grouped convs; 1: none
    channels: int
    size: int
    blocks: dict = field(default_factory=dict)
    lines: list = field(default_factory=list)
    has_block: bool = False
    start: int = 0  # the map size the stage starts at, and its first layer's stride
    stride: int = 1

    def add(self, layers: list[_Layer], layer: _Layer) -> None:
        """Append a layer and follow the map from the stage's start through it."""
        layers.append(layer)
        self.size = _through(layers, self.start, self.stride)


def random_network(rng: random.Random) -> Network:
    """A network of random depth, widths, strides, kernels, blocks, layer options and
    settings, written in the paper's notation, that resdsl must accept."""
    net = _header(rng)
    for kind in rng.sample(sorted(BODIES), rng.randint(1, 3)):
        net.blocks[kind] = _body(net, kind)
        net.lines.append(f"block {kind}(c) = {net.blocks[kind].text(lambda m: _scaled(rng, m))}")
    _stage(net, "conv1", _stem)
    stages = rng.randint(1, 3)
    for index in range(stages):
        force = net.preact and not net.has_block and index == stages - 1
        _stage(net, f"stage{index + 2}", lambda net: _stage_layers(net, force))
    net.lines.append(_head(rng))
    text = "\n".join(net.lines) + "\n"
    summary = f"{stages + 1} stages, {net.lines[2]}, {net.lines[1]}"
    if rng.random() < 0.2:
        return _derived(rng, net, text, summary)
    return Network(text, None, summary)


def _header(rng) -> _Draw:
    shortcut = rng.choice(["A", "B", "C", "highway", "none"])
    channels, size, g = rng.choice([1, 3]), rng.choice(SIZES), rng.choice([1, 1, 2, 4])
    net = _Draw(rng, shortcut, rng.random() < 0.25, g * rng.randint(1, 2 if g > 2 else 4),
                g, channels, size)
    net.lines = [f"network fuzz-{shortcut}", f"input {channels}x{size}x{size}",
                 f"shortcut {shortcut}"]
    settings = {"preact": "on" if net.preact else None, "act": rng.choice(ACTS),
                "projection": "pooled" if shortcut in "BC" and rng.random() < 0.5 else None,
                "stride_on": rng.choice(["1x1", "3x3"]), "bn": rng.choice(["on", "on", "off"]),
                "bias": rng.choice(["on", "off"]), "classes": str(rng.randint(2, 12))}
    net.lines += [f"{key} {value}" for key, value in settings.items()
                  if value and (key in ("preact", "projection") or rng.random() < 0.5)]
    net.lines.append(f"param w = {net.w}")
    net.lines += ([f"param n = {rng.randint(1, 2)}"] if rng.random() < 0.5 else  # as wrn.arch:
                  [f"param depth = {6 * rng.randint(1, 2) + 4}", "param n = (depth - 4) / 6"])
    net.lines += [f"param g = {g}"] if g > 1 else []
    return net


@dataclass
class _Body:
    """A block's convs (kernel, multiple of c), their options, a dropout before one, an se."""

    convs: tuple
    options: list
    dropout: int | None
    se: str | None
    dropout_text: str

    @property
    def grouped(self) -> bool:
        return any(o.startswith(("C=", "groups=")) for opts in self.options for o in opts)

    def text(self, width) -> str:
        """The bracketed body, each conv's width written by `width(multiple)`."""
        terms = []
        for index, ((kernel, multiple), options) in enumerate(zip(self.convs, self.options)):
            if index == self.dropout:
                terms.append(self.dropout_text)
            terms.append(", ".join([f"{kernel}x{kernel}", width(multiple), *options]))
        return "[" + "; ".join(terms + ([self.se] if self.se else [])) + "]"


def _body(net: _Draw, kind: str) -> _Body:
    """A block's convs, with options drawn for them: groups, an activation, bias, BN, a
    dropout between two convs, an se last."""
    rng, convs = net.rng, BODIES[kind]
    options = [_options(net, grouped=index > 0) for index in range(len(convs))]
    dropout = rng.randrange(1, len(convs)) if len(convs) > 1 and rng.random() < 0.3 else None
    se = rng.choice(["se 1/16", "se 0.25", "se 1/4"]) if rng.random() < 0.3 else None
    return _Body(convs, options, dropout, se, rng.choice(["dropout 0.2", "dropout"]))


def _options(net: _Draw, grouped: bool) -> list[str]:
    rng, options = net.rng, []
    if grouped and net.g > 1 and rng.random() < 0.5:
        options.append(rng.choice(["C=g", "groups=g"]))
    for option, chance in ((rng.choice(ACTS), 0.2), ("bias=on", 0.1), ("bn=off", 0.1)):
        if rng.random() < chance:
            options.append(option)
    rng.shuffle(options)
    return options


def _scaled(rng, multiple: int, width: str = "c") -> str:
    if multiple == 1:
        return width
    return (rng.choice([f"{multiple}c", f"{multiple}*c", f"c * {multiple}"]) if width == "c"
            else f"{multiple}*({width})")


def _stem(net: _Draw) -> list[_Layer]:
    rng, layers = net.rng, []
    if rng.random() < 0.25:  # ResNet-D's deep stem: three 3x3 convs
        for width, value in (("w", net.w), ("w", net.w), ("2*w", 2 * net.w)):
            _conv(net, layers, 3, width, value)
    else:
        _conv(net, layers, rng.choice([1, 3, 5, 7]), "w", net.w)
    if rng.random() < 0.3:
        pool = _Layer("3x3 maxpool", ["/2"] if net.size >= 8 else [])
        pool.head += "" if pool.options or rng.random() < 0.5 else ", relu"  # an op of its own
        net.add(layers, pool)
    return layers


def _conv(net: _Draw, layers: list[_Layer], kernel: int, width: str, value: int) -> None:
    """A plain conv, grouped where its groups divide the channels on both sides."""
    fits = value % net.g == 0 and net.channels % net.g == 0  # never the input's 1 or 3
    layer = _Layer(f"{kernel}x{kernel}", [width] + _options(net, fits), kernel,
                   (kernel - 1) // 2)
    if kernel > 1 and net.size >= kernel and net.rng.random() < 0.15:
        layer.options.append("pad 0")
        layer.pad = 0
    net.channels = value
    net.add(layers, layer)


def _stage_layers(net: _Draw, force_block: bool) -> list[_Layer]:
    """A stage: a pooling window (sometimes), then a block or plain layers."""
    rng, layers = net.rng, []
    if net.size >= 4 and rng.random() < 0.3:
        head, options, kernel, pad, ceil = rng.choice(POOLS)
        net.add(layers, _Layer(head, list(options), kernel, pad, ceil))
    block = _block(net) if force_block or rng.random() < 0.7 else None
    if block is not None:
        net.add(layers, block)
    else:  # plain layers, as VGG writes them
        width = rng.choice(sorted(WIDTHS))
        for kernel in (3, rng.choice([1, 3])):
            _conv(net, layers, kernel, width, WIDTHS[width](net.w))
    return layers


def _block(net: _Draw) -> _Layer | None:
    """A named block called, or one written inline, at a width that fits: one its groups
    divide, and under option A or highway one that does not narrow the units."""
    rng = net.rng
    named = rng.random() < 0.5 and net.blocks
    kind = rng.choice(sorted(net.blocks)) if named else rng.choice(sorted(BODIES))
    body = net.blocks[kind] if named else _body(net, kind)
    widen_only = net.shortcut in ("A", "highway")
    fits = [(text, fn(net.w)) for text, fn in sorted(WIDTHS.items())
            if (not body.grouped or fn(net.w) % net.g == 0)
            and (not widen_only or body.convs[-1][1] * fn(net.w) >= net.channels)]
    if not fits:
        return None
    width, value = rng.choice(fits)
    head = f"{kind}({width})" if named else body.text(lambda m: _scaled(rng, m, width))
    head += f" x {rng.choice(REPEATS)}"
    options = [rng.choice(ACTS)] if rng.random() < 0.3 else []
    net.channels, net.has_block = body.convs[-1][1] * value, True
    return _Layer(head, options)


def _stage(net: _Draw, name: str, draw) -> None:
    """Write a stage: its first layer strides (or not), the stride written or implied by
    an output-size column, the column sometimes written as a check."""
    rng, start = net.rng, net.size
    net.start, net.stride = start, 2 if start >= 2 and rng.random() < 0.5 else 1
    layers = draw(net)
    written = any(o.startswith("/") for layer in layers for o in layer.options)
    column = rng.random() < 0.5
    # a column implies the smallest stride that reaches it (a 3x3 maxpool, pad 0, ceil
    # takes 5x5 to 2x2 at stride 2 and 3): imply only where that is the stride drawn, and
    # write `/1` where the column is not to imply
    reach = [s for s in range(1, start + 1) if _through(layers, start, s) == net.size]
    implied = column and not written and reach[:1] == [net.stride]
    stride = (None if implied else rng.choice(["/2", "stride 2"]) if net.stride == 2
              else "/1" if column and not written or rng.random() < 0.1 else None)
    texts = [layers[0].text(rng, stride)] + [layer.text(rng, None) for layer in layers[1:]]
    at = f"{net.channels}x{net.size}x{net.size}" if rng.random() < 0.2 else f"{net.size}x{net.size}"
    net.lines.append(f"{name}{' ' + at if column else ''} : {'; '.join(texts)}"
                     + (f"  # implies /{net.stride}" if implied else ""))


def _through(layers: list[_Layer], size: int, stride: int) -> int:
    """The map size after the layers, the first strided by `stride`, as torch computes it
    (ceil: as its ceil_mode, where a last window that starts outside the map is dropped)."""
    for index, layer in enumerate(layers):
        step = stride if index == 0 else 2 if "/2" in layer.options else 1
        span = size + 2 * layer.pad - layer.kernel
        out = (-(-span // step) if layer.ceil else span // step) + 1
        size = out - 1 if layer.ceil and (out - 1) * step >= size + layer.pad else out
    return size


def _head(rng) -> str:
    head = ["avgpool"] + (["dropout 0.25"] if rng.random() < 0.3 else [])
    if rng.random() < 0.25:  # a hidden fc: a ReLU follows it, or the activation written
        head += ["fc 2*classes"] + ([rng.choice(ACTS)] if rng.random() < 0.5 else [])
    head += ["fc classes"] + (["softmax"] if rng.random() < 0.5 else [])
    return ("head 1x1 : " if rng.random() < 0.3 else "head : ") + ", ".join(head)


def _derived(rng, net: _Draw, parent: str, summary: str) -> Network:
    """A network that extends this one and overrides what keeps it valid: a shortcut
    option its units allow, the activation, the repeats, pre-activation."""
    options = ["B", "C"] if "projection pooled" in parent else ["B", "C", "none"]
    options += ["A", "highway"] if net.shortcut in ("A", "highway") else []
    child = ['extends "parent.arch"', "network derived", f"shortcut {rng.choice(options)}"]
    child += [line for line, chance in ((f"act {rng.choice(ACTS)}", 0.3), ("param n = 1", 0.3),
                                        (f"preact {rng.choice(['on', 'off'])}", 0.2))
              if rng.random() < chance and (net.has_block or not line.startswith("preact"))]
    return Network("\n".join(child) + "\n", parent, f"derived from a network of {summary}")


def write_network(network: Network, folder: Path) -> Path:
    if network.parent is not None:
        (folder / "parent.arch").write_text(network.parent, encoding="utf-8")
    path = folder / "net.arch"
    path.write_text(network.text, encoding="utf-8")
    return path
