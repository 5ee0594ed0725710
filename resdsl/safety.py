"""Safety limits: what keeps a hostile or mistyped .arch file from hanging resdsl or
exhausting memory, and the one way to raise them: `--limit NAME=VALUE` on the command
line, or `with resdsl.limits(NAME=VALUE):` in Python.

Counting is arithmetic, so a 10^6 x 10^6 input or 10^7 channels is answered at once; what
needs limits is what grows with the text (file size, nesting, expression length), what
the passes expand into graph nodes (layers), what `dot` must lay out (figure boxes), and
what torch must allocate (memory, estimated before any tensor exists).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from dataclasses import dataclass, replace

from resdsl.errors import ResdslError, Span


@dataclass(frozen=True)
class Limits:
    """The limits in force; DESCRIPTIONS says what each bounds."""

    file_size: int = 1 << 20
    nesting: int = 32
    expression: int = 64
    number: int = 10**12
    layers: int = 20_000
    extends: int = 32
    figure_boxes: int = 2_500  # graphviz's layout grows faster than linearly
    memory: int | None = None  # None: the device's free memory, found when needed


DESCRIPTIONS = {
    "file_size": "bytes in one .arch file",
    "nesting": "brackets and parentheses open at once",
    "expression": "operators (+ - *) in one expression",
    "number": "the largest number a file writes or computes",
    "layers": "layers of any kind (conv, fc, pooling, ReLU, ...) once blocks are expanded",
    "extends": "files in one `extends` chain",
    "figure_boxes": "boxes in one figure",
    "memory": "bytes a torch module may need; by default the device's free memory",
}
_BYTES = ("file_size", "memory")
_current: contextvars.ContextVar[Limits] = contextvars.ContextVar("resdsl_limits",
                                                                  default=Limits())


def current() -> Limits:
    return _current.get()


@contextlib.contextmanager
def limits(**values):
    """Raise (or lower) limits for the code inside the `with`:
    `with resdsl.limits(layers=10**6, memory="64GiB"): resdsl.build(...)`."""
    token = _current.set(replace(current(), **{k: parse(k, v) for k, v in values.items()}))
    try:
        yield current()
    finally:
        _current.reset(token)


def parse(name: str, value) -> int:
    """A limit's value from `--limit NAME=VALUE` or a keyword: a whole number, `1e6`, or
    for byte limits a size such as `200MB` or `64GiB`."""
    if name not in DESCRIPTIONS:
        raise ResdslError(f"unknown limit '{name}'", code="E609",
                          hint=f"limits: {', '.join(DESCRIPTIONS)}")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    number = byte_size(value, units=name in _BYTES)
    if number is not None:
        return _within_machine(name, number)
    example = "64GiB" if name in _BYTES else "1000000"
    raise ResdslError(f"bad value {value!r} for limit '{name}'", code="E609",
                      hint=f"a positive whole number such as {name}={example}")


def byte_size(value, units: bool = True) -> int | None:
    """A positive whole number, `1e6`, or (`units`) a size such as `200MB` or `64GiB`;
    None for anything else."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([KMGT]i?B|B)?\s*",
                         str(value), re.I | re.ASCII)
    if not match or (match.group(2) is not None and not units):
        return None
    unit = (match.group(2) or "B").upper()
    scale = 1 if unit == "B" else (1024 if "I" in unit else 1000) ** ("KMGT".index(unit[0]) + 1)
    number = float(match.group(1)) * scale
    return int(number) if number >= 1 and number.is_integer() and number < 1e30 else None


def _within_machine(name: str, value: int) -> int:
    """A .arch file is read whole into memory: a `file_size` past the memory this machine
    has available cannot be honoured, and is refused rather than failing later."""
    available = machine_memory() if name == "file_size" else None
    if available is not None and value > available:
        raise ResdslError(f"--limit file_size={format_bytes(value)} is more than this machine "
                          f"can read into memory ({format_bytes(available)} available)",
                          code="E609", hint="a file is read whole; choose a smaller limit")
    return value


def exceeded(name: str, what: str, span: Span | None, *, hint: str = "", code: str,
             limit: int | None = None) -> ResdslError:
    """The error for a limit that was hit: what was asked, the limit, how to raise it.
    `limit` is the value in force where the setting's default stands for another."""
    limit = limit if limit is not None else getattr(current(), name)
    shown = format_bytes(limit) if name in _BYTES else f"{limit:,}"
    how = f"raise the limit with --limit {name}=N (Python: `with resdsl.limits({name}=N):`)"
    return ResdslError(f"{what}, over the limit of {shown} ({name}: {DESCRIPTIONS[name]})",
                       span, hint=f"{hint}; {how}" if hint else how, code=code)


def check_number(value, span: Span | None, what: str = "this number"):
    """Refuse a number beyond the `number` limit (Python's ints never overflow, but a
    number with thousands of digits cannot even be printed)."""
    if abs(value) > current().number:
        raise exceeded("number", f"{what} is too large", span, code="E604")
    return value


def whole_number(digits: str, span: Span | None, what: str = "this number") -> int:
    """A written whole number, refused before conversion when it has more digits than
    the `number` limit allows (Python will not even convert 5,000 digits)."""
    if len(digits.lstrip("0")) > len(str(current().number)):
        raise exceeded("number", f"{what} is too large", span, code="E604")
    return check_number(int(digits), span, what)


def format_limits() -> str:
    """The table that `resdsl limits` prints: each limit, its default, what it bounds."""
    rows = [f"  {'limit':<13} {'default':>17}  bounds"]
    for name, what in DESCRIPTIONS.items():
        default = getattr(Limits(), name)
        shown = ("free memory" if default is None else format_bytes(default)
                 if name in _BYTES else f"{default:,}")
        rows.append(f"  {name:<13} {shown:>17}  {what}")
    return "\n".join(rows)


def format_bytes(count: int) -> str:
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20),
                       ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count:,} B"


def machine_memory() -> int | None:
    """The memory this machine can give a new allocation now: Linux's MemAvailable, else
    the physical memory where the OS says, else None (no default limit)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
