"""Random corruptions of real networks and hostile input, for the property-based tests
(`tests/test_fuzz.py`, driven by hypothesis) and the long campaign
(`benchmarks/fuzz_campaign.py`, driven by seeds). Both draw from a `random.Random`, so a
failing case is reproduced by its seed alone. The random valid networks and their checks
against torch are in `tests/fuzz_networks.py` and `tests/fuzz_checks.py`.

`mutate` corrupts text the way typos and hostile files do; `check_outcome` says whether
resdsl answered it properly: a result, or a `ResdslError` with a code and a place in a
file. `hostile_case` draws a case of a category from HOSTILE (names that reach generated
code, special output paths, raised limits, long, non-regular and Unicode files), each
checked for its own invariant.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from resdsl.errors import CODES, ResdslError


# --- (a) corruptions of the shipped networks --------------------------------------------

TOKEN = re.compile(r"\s+|\d+x\d+(?:x\d+)?|\w+|\"[^\"\n]*\"|.", re.S)
VOCABULARY = ["[", "]", "(", ")", ",", ";", ":", "x", "/2", "/0", "*", "+", "-", "=", "#",
              '"', "\n", "\\\n", "0", "1", "-3", "1.5", "0.0", "999999999999", "10" * 40,
              "3x3", "0x0", "7x7x7", "1x3", "64", "network", "extends", "param", "block",
              "conv", "maxpool", "avgpool", "fc", "softmax", "relu", "dropout", "stride",
              "pad", "shortcut", "input", "bn", "bias", "classes", "stride_on", "n", "w",
              "4w", "x" * 200, "é", "×", "\t", "\x00", "\ufeff", "ceil", "se", "1/16", "//",
              "C", "groups", "preact", "projection", "pooled", "highway", "act", "silu",
              "gelu", "hardswish", "relu6", "on", "off", "max(", "min(4, ", "log(0)", "ceil(",
              "round(", "pow(10, 99)", "make_divisible(", "maxx("]


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


# --- (b) hostile input beyond the text: names, output paths, limits, long and special files

HOSTILE = ("names", "output paths", "raised limits", "long files", "non-regular files",
           "unicode")
HOSTILE_TEXT = ["\ufeff", "\r", "\r\n", "\f", "\v", "\u2028", "\u2029", "\x85", "\x1c",
                "１６", "١٦", "३", "\u200d", "\u202e", "ｃｏｎｖ", "x\u0301", "\t"]
LIMIT_VALUES = ["30GiB", "100GiB", "1TB", "1e19", "1e29", "1e30", "0", "-1", "١٠", "１０",
                "2GiB", "1000000", "1.5", "nan", "inf", "", "64 GiB", "10KB"]


def hostile_case(rng: random.Random, folder: Path, shipped: list[Path]) -> str:
    """One case of a category from HOSTILE, checked for its own invariant; returns the
    category and outcome (an error code or "ok"). Any other exception is a crash."""
    category = rng.choice(HOSTILE)
    return f"{category}: {_HOSTILE_CASES[category](rng, folder, shipped)}"


def _names(rng, folder, shipped):
    """A network or stage named like something the generated module or nn.Module uses:
    compiled, imported and run, or refused by the front end."""
    import keyword

    import torch

    import resdsl
    from resdsl.backends.pytorch.plan import MODULE_NAMES
    from resdsl.frontend.names import RESERVED

    words = sorted(RESERVED | MODULE_NAMES | set(keyword.kwlist)) + ["basic-block", "f"]
    network, stage = rng.choice(words + ["net"]), rng.choice(words + ["conv1"])
    path = folder / "names.arch"
    path.write_text(f"network {network}\ninput 3x16x16\nshortcut A\n{stage} : 3x3, 8\n"
                    "conv2_x 8x8 : [3x3, 16; 3x3, 16] x 1\nhead : avgpool, fc 10\n")
    try:
        model = resdsl.load(path).eval()
    except ResdslError as error:
        return _located(error)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 10)
    model.train()
    return "ok"


def _output_paths(rng, folder, shipped):
    """`write_atomic` on special targets writes files and nothing else."""
    import os
    import stat
    import threading

    from resdsl.output import write_atomic

    kind = rng.choice(["devnull", "fifo", "symlink", "dangling", "readonly", "mode755",
                       "directory"])
    target = folder / f"out-{kind}"
    for leftover in (target, folder / "out-target"):
        if leftover.is_symlink() or leftover.is_file() or leftover.is_fifo():
            leftover.unlink()
    payload = f"{rng.random()}\n"
    reader = None
    if kind == "devnull":
        target = Path("/dev/null")
    elif kind == "fifo":
        os.mkfifo(target)
        received = []
        reader = threading.Thread(target=lambda: received.append(target.read_text()))
        reader.start()
    elif kind in ("symlink", "dangling"):
        if kind == "symlink":
            (folder / "out-target").write_text("old\n")
        target.symlink_to(folder / "out-target")
    elif kind in ("readonly", "mode755"):
        target.write_text("old\n")
        target.chmod(0o444 if kind == "readonly" else 0o755)
    elif kind == "directory":
        target.mkdir(exist_ok=True)
    try:
        write_atomic(target, payload)
        outcome = "ok"
    except ResdslError as error:
        assert error.code == "E701", error.format()
        outcome = error.code
    if reader:
        reader.join(10)
        assert received == [payload] and target.is_fifo()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null was replaced"
    if kind in ("symlink", "dangling"):
        assert target.is_symlink() and (folder / "out-target").read_text() == payload
    if kind == "readonly":
        assert outcome == "E701" and target.read_text() == "old\n"
        target.chmod(0o644)
    if kind == "mode755":
        assert target.read_text() == payload and stat.S_IMODE(target.stat().st_mode) == 0o755
    return outcome


def _raised_limits(rng, folder, shipped):
    """A limit raised or set to a hostile value: a result or E609, never an exception."""
    import resdsl
    from resdsl.safety import DESCRIPTIONS

    name, value = rng.choice(sorted(DESCRIPTIONS)), rng.choice(LIMIT_VALUES)
    try:
        with resdsl.limits(**{name: value}):
            resdsl.count(rng.choice(shipped))
    except ResdslError as error:
        return error.code if error.code == "E609" else _located(error)
    return "ok"


def _long_files(rng, folder, shipped):
    """Many one-line stages, or a long chain of ReLUs: within the default limits a result
    or a located limit error (the campaign's alarm catches what is not linear)."""
    count = rng.choice([100, 1_000, 4_000, 21_000])  # the last is over the layers limit
    path = folder / "long.arch"
    if rng.random() < 0.5:
        body = "\n".join(f"s{i} : 1x1, 4" for i in range(count))
    else:
        body = "conv1 : 3x3, 4" + ", relu" * count
    path.write_text(f"network long\ninput 3x8x8\nshortcut none\n{body}\nhead : avgpool, fc 10\n")
    return check_outcome(path)


def _non_regular_files(rng, folder, shipped):
    """A FIFO, a folder or a device, read directly or through `extends`: a located E101."""
    import os

    fifo = folder / "pipe.arch"
    if not fifo.is_fifo():
        os.mkfifo(fifo)
    special = rng.choice([str(fifo), str(folder), "/dev/zero", "/dev/stdin", "/dev/null"])
    if rng.random() < 0.5:
        return check_outcome(Path(special))
    path = folder / "child.arch"
    path.write_text(f'extends "{special}"\n')
    return check_outcome(path)


def _unicode(rng, folder, shipped):
    """Line breaks, digits and marks from outside ASCII put into a real file: a result, or
    an error whose excerpt is the line it names."""
    import resdsl
    from resdsl.errors import source_lines

    text = rng.choice(shipped).read_text()
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(text))
        text = text[:i] + rng.choice(HOSTILE_TEXT) + text[i:]
    path = folder / "unicode.arch"
    path.write_text(text, encoding="utf-8")
    try:
        resdsl.build(path)
    except ResdslError as error:
        code = _located(error)
        if error.span.line >= 1 and error.span.file == str(path):
            shown = source_lines(text)[error.span.line - 1]
            excerpt = error.format().split("\n")[1]
            assert excerpt.strip() == "".join(c if c.isprintable() else " " for c in shown
                                              ).strip(), error.format()
        return code
    return "ok"


def _located(error: ResdslError) -> str:
    assert error.code in CODES and error.span is not None and error.span.file, error.format()
    error.format()
    return error.code


_HOSTILE_CASES = {"names": _names, "output paths": _output_paths,
                  "raised limits": _raised_limits, "long files": _long_files,
                  "non-regular files": _non_regular_files, "unicode": _unicode}
