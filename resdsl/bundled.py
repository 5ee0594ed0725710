"""What ships inside resdsl: the grammar and the networks of `archs/`, and finding a
bundled network by name (`resdsl flops resnet152`) from any directory.

In a wheel they are the packages `resdsl.grammars` and `resdsl.archs`. Run from a source
checkout (a `python` started in its root imports the checkout's `resdsl/`, even with an
installed copy) they are the checkout's own `grammars/` and `archs/` folders beside it.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from resdsl.errors import ResdslError, Span, did_you_mean

_CHECKOUT = Path(__file__).resolve().parent.parent


def folder(name: str):
    """`grammars` or `archs`: the installed package, else the checkout's folder."""
    try:
        return resources.files(f"resdsl.{name}")
    except ModuleNotFoundError:
        return _CHECKOUT / name


def bundled_archs() -> dict[str, Path]:
    """The shipped networks by name (the file name without `.arch`), sorted."""
    found = (Path(str(entry)) for entry in folder("archs").iterdir()
             if entry.name.endswith(".arch"))
    return {path.stem: path for path in sorted(found, key=lambda path: path.stem)}


ABOUT_WIDTH = 120  # a first sentence longer than this is cut to its opening clause
ABBREVIATIONS = (" sec", " al", " Fig", "e.g", "i.e", " cf", " vs", "..")  # end no sentence, nor does "..."


def about(path: Path) -> str:
    """What a network file says it is: its opening comment's first sentence, whole, or
    where that runs past ABOUT_WIDTH characters its opening clause (up to a colon or a
    semicolon outside parentheses). Never a line's end in mid-sentence."""
    lines = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    sentence = _opening(text, lambda i: text[i] == "." and text[i + 1:i + 2] in ("", " ")
                        and not text[:i].endswith(ABBREVIATIONS), inclusive=True)
    if len(sentence) <= ABOUT_WIDTH:
        return sentence
    return _opening(sentence, lambda i: sentence[i] in ":;") or sentence


def _opening(text: str, ends, inclusive: bool = False) -> str:
    """`text` up to the first place outside parentheses where `ends(index)` holds."""
    depth = 0
    for index, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and ends(index):
            return text[:index + inclusive]
    return text


def find_arch(name: str) -> str:
    """A file path as given when it exists; else the bundled network of that name
    (`resnet152` or `resnet152.arch`); else an E101 that lists the near names."""
    archs = bundled_archs()
    if _is_file(name) or "/" in name or "\\" in name:
        stem = Path(name).stem
        if stem in archs and Path(name).suffix == ".arch" and not os.path.lexists(name):
            raise ResdslError(f"no file '{name}'", Span(name, 0, 0), code="E101",
                              hint=f"'{stem}' is a bundled network, found by its name from "
                                   f"any directory: `resdsl flops {stem}`, "
                                   f"resdsl.count(\"{stem}\")")
        return name  # reading it says what is wrong, if anything (a FIFO, a device)
    stem = name[:-len(".arch")] if name.endswith(".arch") else name
    if stem in archs:
        return str(archs[stem])
    hint = did_you_mean(stem, archs)
    raise ResdslError(f"no file '{name}', and no bundled network of that name",
                      Span(name, 0, 0), code="E101",
                      hint=(hint + " " if hint else "") + "`resdsl list` shows the bundled "
                           "networks; a path to your own .arch file works too")


def _is_file(name: str) -> bool:
    """Whether `name` is a file of any kind, a FIFO or a device too (reading one refuses
    it), but not a folder: a folder `resnet50/` of outputs must not hide the network."""
    try:
        path = Path(name)
        return path.exists() and not path.is_dir()
    except (OSError, ValueError):  # a NUL byte, a name too long
        return False
