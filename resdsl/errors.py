"""Source spans and the one error type that every stage raises.

Every user-facing failure is a `ResdslError` carrying the span of the text it came from,
so the CLI can print `file:line:col: error: message`, the line, and a caret under it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path


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


class ResdslError(Exception):
    """A problem with the user's input, reported at a span, never as a traceback."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 source: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source = source  # the file's text, when the caller already holds it

    def format(self) -> str:
        """The diagnostic as a compiler prints it: location, message, source line, caret."""
        where = f"{self.span}: " if self.span else ""
        lines = [f"{where}error: {self.message}"]
        excerpt = self._excerpt()
        if excerpt:
            lines.extend(excerpt)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

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
        source_lines = text.splitlines()
        if span.line > len(source_lines):
            return []
        line = source_lines[span.line - 1].expandtabs(1)
        start = max(span.column, 1)
        if span.end_line == span.line and span.end_column and span.end_column > start:
            width = span.end_column - start
        else:
            width = 1
        width = max(1, min(width, len(line) - start + 1))
        return [f"    {line}", "    " + " " * (start - 1) + "^" + "~" * (width - 1)]


def did_you_mean(word: str, choices) -> str | None:
    """A hint naming the closest known word, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
