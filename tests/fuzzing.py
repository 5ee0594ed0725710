"""Random valid networks and random corruptions of real ones, for the property-based tests
(`tests/test_fuzz.py`, driven by hypothesis) and the long campaign
(`benchmarks/fuzz_campaign.py`, driven by seeds). Both draw from a `random.Random`, so a
failing case is reproduced by its seed alone.

`random_network` writes .arch text that must build; `check_network` holds the built
network to a real torch forward pass, torch's own FLOP counter, the compiled source and a
real `dot` render. `mutate` corrupts text the way typos and hostile files do;
`check_outcome` says whether resdsl answered it properly: a result, or a `ResdslError`
with a code and a place in a file.
"""

from __future__ import annotations

import importlib.util
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from resdsl.errors import CODES, ResdslError


# --- (a) random valid networks ----------------------------------------------------------

@dataclass
class Network:
    """A generated network: its text, the parent it extends (or None), and what it is."""

    text: str
    parent: str | None
    summary: str


def random_network(rng: random.Random) -> Network:
    """A network of random depth, widths, strides, kernels, block kinds, shortcut option
    and settings, written in the paper's notation, that resdsl must accept."""
    shortcut = rng.choice(["A", "B", "C", "none"])
    size = rng.choice([8, 12, 16, 20, 32])
    channels = rng.choice([1, 3])
    lines = [f"network fuzz-{shortcut}", f"input {channels}x{size}x{size}"]
    lines.append(f"shortcut {shortcut}")
    settings = {"stride_on": rng.choice(["1x1", "3x3"]), "bn": rng.choice(["on", "on", "off"]),
                "bias": rng.choice(["on", "off"]), "classes": str(rng.randint(2, 12))}
    lines += [f"{key} {value}" for key, value in settings.items() if rng.random() < 0.7]
    width = rng.randint(2, 8)
    lines.append(f"param w = {width}")
    lines.append(f"param n = {rng.randint(1, 3)}")
    # option A pads channels, so its units may only widen: one block kind, growing widths
    kinds = rng.sample(["basic", "bottleneck", "single", "wide"], 1 if shortcut == "A" else 2)
    bodies = {"basic": "[3x3, c; 3x3, c]", "bottleneck": "[1x1, c; 3x3, c; 1x1, 4c]",
              "single": "[3x3, c]", "wide": "[1x1, c; 5x5, c]"}
    lines += [f"block {kind}(c) = {bodies[kind]}" for kind in kinds]

    stem_kernel = rng.choice([1, 3, 5, 7])
    stem_stride = rng.choice([1, 2]) if size >= 12 else 1
    stem = f"{stem_kernel}x{stem_kernel}, w" + (f", /{stem_stride}" if stem_stride > 1 else "")
    if rng.random() < 0.3:
        stem += ", 3x3 maxpool" + (", /2" if size >= 16 else "")
    lines.append(f"conv1 : {stem}")

    stages = rng.randint(1, 3)
    growth = ["w", "2*w", "2*w + 2", "4*w", "w*4"]
    for index in range(stages):
        width_expr = growth[min(index, len(growth) - 1)] if shortcut == "A" else rng.choice(growth)
        repeat = rng.choice(["1", "2", "n", "n + 1"])
        strided = index > 0 and rng.random() < 0.6
        kind = rng.choice(kinds)
        form = rng.random()
        if form < 0.45:
            term = f"{kind}({width_expr}) x {repeat}"
        elif form < 0.8:
            body = bodies[kind].replace("4c", f"4*({width_expr})").replace("c", f"({width_expr})")
            term = f"{body} x {repeat}"
        else:  # plain layers, as VGG writes them
            term = f"3x3, {width_expr}; 3x3, {width_expr}"
        if strided:
            term += ", /2"
        lines.append(f"stage{index + 2} : {term}")
    head = ["avgpool"] + (["dropout 0.25"] if rng.random() < 0.2 else [])
    head += ["fc classes"] + (["softmax"] if rng.random() < 0.5 else [])
    lines.append("head : " + ", ".join(head))
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.2:  # derive a plain or re-optioned network from this one
        child = f'extends "parent.arch"\nnetwork derived\nshortcut {rng.choice(["B", "C", "none"])}\n'
        return Network(child, text, f"derived from a {stages}-stage {shortcut} network")
    return Network(text, None, f"{stages}-stage, shortcut {shortcut}")


def write_network(network: Network, folder: Path) -> Path:
    if network.parent is not None:
        (folder / "parent.arch").write_text(network.parent, encoding="utf-8")
    path = folder / "net.arch"
    path.write_text(network.text, encoding="utf-8")
    return path


def check_network(path: Path, render: bool = True) -> None:
    """Every invariant of a valid network; an AssertionError says which one broke."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import resdsl
    from resdsl.backends.figure.draw import draw
    from resdsl.backends.figure.layout import layout
    from resdsl.backends.pytorch.plan import make_plan
    from resdsl.backends.summary import summarize

    graph = resdsl.build(path)
    summary = summarize(graph)
    model = resdsl.load(path).eval()
    assert sum(p.numel() for p in model.parameters()) == summary.params, "params"

    plan = make_plan(graph)
    seen = {}
    modules = dict(model.named_modules())
    hooks = [modules[".".join(item.path)].register_forward_hook(
                 lambda _m, _i, out, key=".".join(item.path): seen.__setitem__(key, out.shape))
             for item in plan.items]
    x = torch.randn(2, *summary.input)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(x)
    for hook in hooks:
        hook.remove()
    for item in plan.items:
        key = ".".join(item.path)
        assert tuple(seen[key][1:]) == tuple(item.shape), f"shape of {key}"
    assert tuple(out.shape) == (2, *summary.output), "output shape"
    assert counter.get_total_flops() == 2 * 2 * summary.macs, "MACs against FlopCounterMode"

    compiled = _import_file(resdsl.source(path), path.parent / "compiled_net.py")
    twin = getattr(compiled, plan.class_name)().eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(twin(x), out), "compiled source against resdsl.load"

    figure = draw([layout(graph, 0)])
    if render:
        assert figure.pipe(format="svg").lstrip().startswith(b"<?xml"), "dot render"


def _import_file(text: str, path: Path):
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"fuzz_compiled_{abs(hash(text))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop(spec.name, None)
    return module


# --- (b) corruptions of the shipped networks --------------------------------------------

TOKEN = re.compile(r"\s+|\d+x\d+(?:x\d+)?|\w+|\"[^\"\n]*\"|.", re.S)
VOCABULARY = ["[", "]", "(", ")", ",", ";", ":", "x", "/2", "/0", "*", "+", "-", "=", "#",
              '"', "\n", "\\\n", "0", "1", "-3", "1.5", "0.0", "999999999999", "10" * 40,
              "3x3", "0x0", "7x7x7", "1x3", "64", "network", "extends", "param", "block",
              "conv", "maxpool", "avgpool", "fc", "softmax", "relu", "dropout", "stride",
              "pad", "shortcut", "input", "bn", "bias", "classes", "stride_on", "n", "w",
              "4w", "x" * 200, "é", "×", "\t", "\x00", "\ufeff"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three corruptions: delete, duplicate, swap or replace tokens, insert
    random bytes or invalid UTF-8, truncate, or flip a byte."""
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(_MUTATIONS)(data, rng)
    return data


def _tokens(data: bytes) -> list[bytes]:
    return [m.group().encode("utf-8", "surrogateescape")
            for m in TOKEN.finditer(data.decode("utf-8", "surrogateescape"))] or [b""]


def _delete(data, rng):
    tokens = _tokens(data)
    del tokens[rng.randrange(len(tokens))]
    return b"".join(tokens)


def _duplicate(data, rng):
    tokens = _tokens(data)
    i = rng.randrange(len(tokens))
    tokens.insert(i, tokens[i])
    return b"".join(tokens)


def _swap(data, rng):
    tokens = _tokens(data)
    i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
    tokens[i], tokens[j] = tokens[j], tokens[i]
    return b"".join(tokens)


def _replace(data, rng):
    tokens = _tokens(data)
    tokens[rng.randrange(len(tokens))] = rng.choice(VOCABULARY).encode("utf-8")
    return b"".join(tokens)


def _insert_bytes(data, rng):
    i = rng.randint(0, len(data))
    junk = rng.choice([bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))),
                       b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80"])
    return data[:i] + junk + data[i:]


def _truncate(data, rng):
    return data[:rng.randint(0, len(data))]


def _flip(data, rng):
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


_MUTATIONS = (_delete, _duplicate, _swap, _replace, _replace, _insert_bytes, _truncate, _flip)


def check_outcome(path: Path) -> str:
    """Run everything that needs no tensors on a (possibly corrupt) file. Return the
    error code, or "ok"; any exception but a located `ResdslError` propagates."""
    import resdsl
    from resdsl.backends.figure.draw import draw
    from resdsl.backends.figure.layout import layout
    from resdsl.backends.pytorch.plan import make_plan
    from resdsl.backends.pytorch.source import emit
    from resdsl.backends.summary import summarize

    try:
        graph = resdsl.build(path)
        summarize(graph).to_dict()
        draw([layout(graph, 0)]).source
        compile(emit(make_plan(graph), "fuzz"), "<compiled>", "exec")
    except ResdslError as error:
        span = error.span
        assert error.code in CODES and span is not None and span.file, error.format()
        assert span.line >= 1 or error.code in ("E101", "E601"), error.format()
        error.format()  # the message with its excerpt must print
        return error.code
    return "ok"
