"""Python source text that the torch backend writes: literals and docstring text that no
name from an .arch file can break out of, and nn.Sequential expressions."""

from __future__ import annotations

INDENT = " " * 4


def safe_text(text: str) -> str:
    """Text for a docstring: no quotes, backslashes or line breaks from the input."""
    return "".join(c if c.isprintable() and c not in "\"\\" else "?" for c in text)


def literal(text: str) -> str:
    """A Python string literal for any text: double-quoted when that needs no escapes."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return repr(text)


def sequential(modules, indent: str) -> str:
    """nn.Sequential, positional when the names are 0, 1, 2, ..., else named."""
    if [m[0] for m in modules] == [str(i) for i in range(len(modules))]:
        lines = [f"{indent}{INDENT}{m[1]},{comment(m)}" for m in modules]
        return "nn.Sequential(\n" + "\n".join(lines) + f"\n{indent})"
    lines = [f"{indent}{INDENT}({literal(m[0])}, {m[1]}),{comment(m)}" for m in modules]
    return "nn.Sequential(OrderedDict([\n" + "\n".join(lines) + f"\n{indent}]))"


def comment(module) -> str:
    return f"  # {module[2]}" if len(module) > 2 else ""
