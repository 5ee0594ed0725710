"""What every subcommand shares: its declaration, argument types, and where results go."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass

EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130


@dataclass(frozen=True)
class Command:
    """A subcommand, declared once: the CLI builds its parser and dispatches from these."""

    name: str
    help: str  # one line, for `resdsl --help`
    description: str  # a paragraph, for `resdsl NAME --help`
    examples: tuple[str, ...]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    network_options: bool = True  # takes --set, --limit and --dump-ir


def build(path: str, args: argparse.Namespace):
    """The verified graph of one file under the command's --set and --dump-ir."""
    from resdsl.api import build as build_graph

    dump_to = (lambda text: print(text, file=sys.stderr)) if args.dump_ir else None
    return build_graph(path, dump_to=dump_to, **dict(args.overrides))


def named_network(name: str, args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The file of a network named on the command line (a path, a bundled name, either
    with `@name=value,...`) and the --set values it is built with, its own winning."""
    from resdsl.bundled import find_arch
    from resdsl.frontend.config import split_variant

    name, own = split_variant(name)
    return find_arch(name), {**dict(args.overrides), **dict(own)}


def emit(text: str, output: str | None) -> None:
    """A command's result: to stdout, or written whole to `output`."""
    if output:
        from resdsl.output import write_atomic

        write_atomic(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def unknown_figure_format(command: str, output: str | None) -> bool:
    """Whether `-o` names a file whose format a figure cannot take; said on stderr (the
    command then exits 2, before any work)."""
    from resdsl.backends.figure.draw import FORMATS

    if output and Path(output).suffix.lower().lstrip(".") not in FORMATS + ("gv",):
        print(f"resdsl {command}: error: cannot tell the format of {output}: "
              "use .svg, .png, .pdf or .dot", file=sys.stderr)
        return True
    return False


def loader_workers(args: argparse.Namespace) -> int:
    """--workers, or its default: 4 decoding processes for image files, none for data
    held in memory."""
    if args.workers is not None:
        return args.workers
    return 4 if args.data.startswith("imagefolder") else 0


def override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, as in n=18, not {text!r}")
    return key.strip(), value.strip()


def ascii_digits(text: str) -> bool:
    """Whether `text` is a whole number in ASCII digits (int() would also take ٣ and １)."""
    return text.strip().isascii() and text.strip().isdigit()


def whole(text: str) -> int:
    """A whole number, 0 or more, in ASCII digits."""
    if not ascii_digits(text):
        raise argparse.ArgumentTypeError(f"expected a whole number such as 4, not {text!r}")
    return int(text)


def positive(text: str) -> int:
    value = int(text) if ascii_digits(text) else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return value


def real(text: str) -> float:
    """A number written in ASCII decimal (float() would also take ٣, １, nan and inf)."""
    from resdsl.frontend.config import DECIMAL

    if DECIMAL.fullmatch(text.strip()) is None:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.1, not {text!r}")
    return float(text)
