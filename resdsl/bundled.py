"""What ships inside resdsl: the grammar and the networks of `archs/`, and finding a
bundled network by name (`resdsl flops resnet152`) from any directory.

In a wheel they are the packages `resdsl.grammars` and `resdsl.archs`. Run from a source
checkout (a `python` started in its root imports the checkout's `resdsl/`, even with an
installed copy) they are the checkout's own `grammars/` and `archs/` folders beside it.
"""

from __future__ import annotations

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


def about(path: Path) -> str:
    """What a network file says it is: the first line of its opening comment."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    return first.lstrip("#").strip() if first.startswith("#") else ""


def find_arch(name: str) -> str:
    """A file path as given when it exists; else the bundled network of that name
    (`resnet152` or `resnet152.arch`); else an E101 that lists the near names."""
    if _is_file(name) or "/" in name or "\\" in name:
        return name  # reading it says what is wrong, if anything (a FIFO, a device)
    archs = bundled_archs()
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
