"""Source spans, diagnostics with stable codes, and the one error type every stage raises.

Every user-facing failure is a `ResdslError` carrying a code from `CODES` and the span of
the text it came from, so the CLI can print `file:line:col: error[E302]: message`, the
line and a caret under it, and `resdsl check --json` can hand the same facts to an editor.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

# Stable codes, one per kind of problem; the README's table lists them. Never reuse or
# renumber one: editors and CI scripts match on them.
CODES = {
    # reading and syntax
    "E101": "the file cannot be read",
    "E102": "the file is not UTF-8 text",
    "E103": "syntax error",
    "E104": "a bracket is never closed",
    # names and definitions
    "E201": "unknown name in an expression",
    "E202": "unknown block",
    "E203": "unknown setting",
    "E204": "defined twice in one file",
    "E205": "wrong number of block arguments",
    "E206": "--set names no parameter or setting",
    "E207": "files extend one another in a cycle",
    "E208": "more than one `extends` in a file",
    "E209": "an op written in the general form with a bad argument, or that is no layer",
    # values
    "E301": "bad value for a setting",
    "E302": "a number that must be whole is not",
    "E303": "a number below its minimum",
    "E304": "dropout probability outside [0, 1)",
    "E305": "a kernel that is not square",
    "E306": "a --set value that is not a number",
    "E307": "division by zero",
    "E308": "a function of numbers given a value it has no result for (log of 0)",
    # structure
    "E401": "the network has no input size",
    "E402": "the network has no stages, or no layers in them",
    "E403": "blocks but no shortcut option",
    "E404": "layers that belong to no stage",
    "E405": "a channel count in the wrong place or missing",
    "E406": "a pooling window or padding in the wrong place",
    "E407": "a stride in the wrong place",
    "E408": "a block that holds something other than convolutions, se and dropout",
    "E409": "a layer option (C=, bias=, bn=, ceil, se) in the wrong place or with a bad value",
    "E410": "a setting that the network's layers cannot follow (preact, projection, highway)",
    # shapes
    "E501": "a layer does not fit its input's shape",
    "E502": "the output-size column disagrees with the layers",
    "E503": "a block's output and its shortcut differ",
    "E504": "the output-size column implies a stride other than 1 or 2",
    "E505": "a conv's padding is as large as its kernel",
    # limits (each names the limit; `--limit NAME=VALUE` raises it)
    "E601": "file larger than the `file_size` limit",
    "E602": "brackets nested deeper than the `nesting` limit",
    "E603": "an expression longer than the `expression` limit",
    "E604": "a number larger than the `number` limit",
    "E605": "more layers than the `layers` limit",
    "E606": "a longer `extends` chain than the `extends` limit",
    "E607": "a figure with more boxes than the `figure_boxes` limit",
    "E608": "a module that needs more memory than the `memory` limit",
    "E609": "an unknown limit or a bad limit value",
    # backends, devices, outputs, training data
    "E701": "an output file cannot be written",
    "E702": "graphviz's `dot` is missing or failed",
    "E703": ("a name the torch backend cannot use: a reserved or non-ASCII stage name, or "
             "a naming that does not fit the network"),
    "E704": "a device that is unknown or unavailable",
    "E705": "a state dict that does not fit the module",
    "E706": "training data that is missing or unreadable",
    "E707": "a training setting that cannot work (batch, steps, resume)",
    "E708": "an optional package that the command needs is not installed",
    "E709": "a training run's metrics file that is missing or unreadable",
    "E710": "a --out folder that holds an earlier run or is in use by another",
    "E711": "training diverged: a loss or weight that is not finite",
    "E712": "a process of a multi-process run lost the others",
    "E713": "an evaluation that cannot work (options that do not apply, scales, classes)",
    "E714": "a memory budget (--fit) that not even the weights, or a batch of one, fit in",
    # bugs in resdsl itself
    "E901": "internal error: an invariant of the IR is broken",
    # warnings
    "W101": "a block that is defined but never used",
    "W102": "a parameter that is declared but never used",
    "W103": "a stride larger than its kernel skips input pixels",
    "W104": "a column that halves the map without widening the units, or the reverse",
    "W105": "a --set of a parameter that nothing the network builds reads",
    "W106": "the same --set given twice, of which the last counts",
    "W107": "a network that scores more classes than its data has",
}


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def source_lines(text: str) -> list[str]:
    """The lines of .arch text as every span counts them: only \\n, \\r\\n and \\r end a
    line (not \\f, \\v, U+2028 and the others that `str.splitlines()` also breaks at), and
    a byte order mark before the first line is not part of it. The parser reads the text
    joined back with \\n, so its line and column numbers index these lines."""
    return _LINE_BREAK.split(text.removeprefix("\ufeff"))


def _printable(text: str) -> str:
    """Text quoted from a file, escaped where it would break the line or drive the
    terminal (U+2029, \\x85, ESC): a message is one line as printed."""
    return "".join(c if c.isprintable() or c == "\n" else c.encode("unicode_escape").decode()
                   for c in text)


@dataclass(frozen=True)
class Span:
    """Where a piece of IR came from: 1-based line and column, end inclusive of the line."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        if self.line < 1:  # the file as a whole (unreadable, not UTF-8, ...)
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One error or warning: what an editor needs to underline it and say why."""

    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"  # or "warning"
    source: str | None = None  # the file's text, when the caller already holds it

    def __post_init__(self):
        if self.code not in CODES:
            raise ValueError(f"unknown diagnostic code {self.code!r}")

    def format(self) -> str:
        """As a compiler prints it: location, severity and code, message, line, caret."""
        where = f"{self.span}: " if self.span else "resdsl: "
        lines = [f"{where}{self.severity}[{self.code}]: {_printable(self.message)}"]
        lines.extend(self._excerpt())
        if self.hint:
            lines.append(f"hint: {_printable(self.hint)}")
        return "\n".join(lines)

    def to_dict(self, file: str | None = None) -> dict:
        """The `resdsl check --json` form. `file` labels a diagnostic that has no span
        (a --set value) with the file it was checking."""
        span = self.span
        located = span is not None and span.line >= 1
        end = None
        if located and span.end_line is not None:
            end = {"line": span.end_line, "column": span.end_column}
        return {"file": span.file if span else file,
                "line": span.line if located else None,
                "column": span.column if located else None,
                "end": end, "severity": self.severity, "code": self.code,
                "message": self.message, "hint": self.hint}

    def _excerpt(self) -> list[str]:
        span = self.span
        if span is None or span.line < 1:
            return []
        text = self.source
        if text is None:
            try:
                text = Path(span.file).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return []
        lines = source_lines(text)
        if span.line > len(lines):
            return []
        # One column, one character: a tab or any other unprintable one (\v, U+2028, an
        # escape sequence) is shown as a space, so the caret stays under its column.
        line = "".join(c if c.isprintable() else " " for c in lines[span.line - 1])
        start = max(span.column, 1)
        if len(line) > 120:  # a very long line: show the part around the caret
            offset = max(0, start - 60)
            line, start = line[offset:offset + 120], start - offset
        if span.end_line == span.line and span.end_column and span.end_column > start:
            width = span.end_column - start
        else:
            width = 1
        width = max(1, min(width, len(line) - start + 1))
        return [f"    {line}", "    " + " " * (start - 1) + "^" + "~" * (width - 1)]


class ResdslError(Exception):
    """A problem with the user's input, reported at a span, never as a traceback."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 source: str | None = None, *, code: str):
        super().__init__(message)
        self.diagnostic = Diagnostic(code, message, span, hint, "error", source)
        self.warnings: list[Diagnostic] = []  # found before it, often nearer the slip

    def __str__(self) -> str:  # a traceback in a script shows the place and the hint
        return self.diagnostic.format()

    code = property(lambda self: self.diagnostic.code)
    message = property(lambda self: self.diagnostic.message)
    span = property(lambda self: self.diagnostic.span)
    hint = property(lambda self: self.diagnostic.hint)

    def format(self) -> str:
        return self.diagnostic.format()


class ResdslWarning(UserWarning):
    """A warning diagnostic (W1xx). It goes through Python's `warnings`, so that scripts
    and notebooks see it too; the command line prints it as a compiler does."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


def did_you_mean(word: str, choices) -> str | None:
    """A hint naming the closest known word, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
