"""The `resdsl` command. Results go to stdout, diagnostics to stderr.

Exit codes: 0 success; 1 a problem with the input (.arch text or --set), reported as
`file:line:col: error: ...`; 2 bad command-line usage; 3 an internal error (a bug in
resdsl: set RESDSL_DEBUG=1 for the traceback); 130 interrupted (`train` saves first).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
import warnings

from resdsl.cli.analysis import CHECK, FLOPS, LIMITS, LIST
from resdsl.cli.evaluation import EVAL, RESPONSES
from resdsl.cli.common import EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, Command, override
from resdsl.cli.design import DIFF, MEMORY
from resdsl.cli.figures import RENDER
from resdsl.cli.latency import LATENCY
from resdsl.cli.pytorch import COMPILE
from resdsl.cli.training import PLOT, TRAIN
from resdsl.errors import ResdslError, ResdslWarning
from resdsl.frontend.config import last_of
from resdsl.safety import limits
from resdsl.version import __version__

COMMANDS: dict[str, Command] = {c.name: c for c in (
    FLOPS, DIFF, LATENCY, MEMORY, CHECK, COMPILE, RENDER, TRAIN, PLOT, EVAL, RESPONSES, LIST,
    LIMITS)}

EPILOG = """\
exit codes: 0 success; 1 error in an .arch file, a --set value or other input; 2 bad
usage; 3 internal error (set RESDSL_DEBUG=1 to see the traceback); 130 interrupted
(train saves a checkpoint first). Safety limits: `resdsl limits`."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resdsl", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description=_wrap("Compile networks written like Table 1 of 'Deep Residual Learning "
                          "for Image Recognition' (.arch files): shapes, parameters and "
                          "multiply-adds, PyTorch and ONNX modules, figures, training."))
    parser.add_argument("--version", action="version", version=f"resdsl {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    network_options = _network_options()
    for command in COMMANDS.values():
        examples = "\n".join(f"  {example}" for example in command.examples)
        sub = subparsers.add_parser(
            command.name, help=command.help, description=_wrap(command.description),
            parents=[network_options] if command.network_options else [],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=f"{EPILOG}\n\nexamples:\n{examples}")
        command.add_arguments(sub)
    return parser


def _network_options() -> argparse.ArgumentParser:
    """--set, --limit and --dump-ir: for every command that reads networks."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--set", dest="overrides", action="append", type=override,
                         default=[], metavar="NAME=VALUE",
                         help="override a parameter (n=18) or a setting (shortcut=A, "
                              "input=3x32x32, stride_on=3x3, bias=on, bn=off, classes=10, "
                              "act=silu) for every file; repeatable. For one file of "
                              "several, write FILE@n=18,act=silu in its place")
    options.add_argument("--limit", dest="limits", action="append", type=override, default=[],
                         metavar="NAME=VALUE",
                         help="raise or lower a safety limit (`resdsl limits` lists them), "
                              "e.g. layers=1000000 or memory=64GiB; repeatable")
    options.add_argument("--dump-ir", action="store_true",
                         help="print the IR to stderr after elaboration and after each pass")
    return options


def _wrap(text: str) -> str:
    """Descriptions keep their layout (the epilogs hold examples), so wrap them here."""
    return textwrap.fill(text, width=88)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with limits(**dict(getattr(args, "limits", []))), warnings.catch_warnings():
            warnings.simplefilter("always", ResdslWarning)
            warnings.showwarning = _show_warning
            if hasattr(args, "overrides"):
                args.overrides, repeated = last_of(args.overrides)
                for diagnostic in repeated:
                    warnings.warn(ResdslWarning(diagnostic))
            return COMMANDS[args.command].run(args)
    except ResdslError as error:
        for diagnostic in [*error.warnings, error.diagnostic]:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `resdsl flops ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INPUT
    except Exception as error:  # a bug: say so plainly, keep the traceback for debugging
        if os.environ.get("RESDSL_DEBUG"):
            traceback.print_exc()
        print(f"resdsl: internal error: {type(error).__name__}: {error}\n"
              "this is a bug in resdsl; rerun with RESDSL_DEBUG=1 and report the traceback",
              file=sys.stderr)
        return EXIT_INTERNAL


_python_show_warning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A resdsl warning as a compiler prints it (file:line:col, the line, a caret); any
    other warning as Python would."""
    if isinstance(message, ResdslWarning):
        print(message.diagnostic.format(), file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)
