"""Warnings: text that is valid but probably not what was meant.

Only definitions in the file being checked are reported, not those it inherits through
`extends`: a parent's block that a derived file no longer calls is the parent's business.
A `--set` of a parameter that nothing the network builds reads is the user's, and is
reported whichever file declares it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from resdsl.errors import Diagnostic
from resdsl.frontend import ast
from resdsl.frontend.resolve import NetworkSpec


def unused_definitions(spec: NetworkSpec) -> list[Diagnostic]:
    """W101 for a block no stage calls, W102 for a parameter no expression names."""
    terms = [term for stage in spec.stages for term in _walk(stage.terms)]
    called = {term.name for term in terms if term.kind == "call"}
    expressions = [expr for term in terms for expr in _expressions(term)]
    expressions += [expr for block in spec.blocks.values() for term in _walk(block.body)
                    for expr in _expressions(term)]
    expressions += [param.default for param in spec.params.values()]
    named = {var.name for expr in expressions for var in _variables(expr)}
    warnings = [Diagnostic("W101", f"block '{name}' is defined but never used", block.span,
                           hint="call it from a stage, as in `conv2_x : "
                                f"{name}(64) x 3`, or delete it", severity="warning")
                for name, block in spec.blocks.items()
                if name not in called and block.span.file == spec.path]
    warnings += [Diagnostic("W102", f"parameter '{name}' is declared but never used",
                            param.span, hint="use it in a stage or block, or delete it",
                            severity="warning")
                 for name, param in spec.params.items()
                 if name not in named and param.span.file == spec.path]
    return sorted(warnings, key=lambda d: (d.span.line, d.span.column))


def unread_overrides(spec: NetworkSpec, overrides: Mapping[str, object]) -> list[Diagnostic]:
    """W105 for a `--set` of a parameter that no stage reads, directly, through a block it
    calls or through another parameter it reads: the result would carry `[d=5]` in its
    name and the numbers of the file as written (a derived file that replaced the block
    reading `d`, say)."""
    read = _names_read(spec)
    return [Diagnostic("W105", f"--set {name}={value} changes nothing: no stage of "
                               f"'{spec.name}' reads parameter '{name}'", None,
                       hint=f"'{name}' is declared at {spec.params[name].span}, but the "
                            "stages and the blocks they call never name it",
                       severity="warning")
            for name, value in overrides.items() if name in spec.params and name not in read]


def _names_read(spec: NetworkSpec) -> set[str]:
    """The names the stages read, with those the blocks they call and the parameters
    they read read in turn (a block's own parameters shadow the network's)."""
    terms = [term for stage in spec.stages for term in _walk(stage.terms)]
    read = {var.name for term in terms for expr in _expressions(term) for var in _variables(expr)}
    for name in {term.name for term in terms if term.kind == "call"} & set(spec.blocks):
        block = spec.blocks[name]
        read |= {var.name for term in _walk(block.body) for expr in _expressions(term)
                 for var in _variables(expr)} - set(block.params)
    pending = [name for name in read if name in spec.params]
    while pending:
        for var in _variables(spec.params[pending.pop()].default):
            if var.name not in read:
                read.add(var.name)
                pending += [var.name] if var.name in spec.params else []
    return read


def _walk(terms) -> Iterator[ast.Term]:
    for term in terms:
        yield term
        yield from _walk(term.body)


def _expressions(term: ast.Term) -> Iterator[ast.Expr]:
    if term.value is not None:
        yield term.value
    yield from (arg.value if isinstance(arg, ast.Keyword) else arg for arg in term.args)


def _variables(expr: ast.Expr) -> Iterator[ast.Var]:
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Var):
            yield node
        elif isinstance(node, ast.Neg):
            stack.append(node.operand)
        elif isinstance(node, ast.BinOp):
            stack += [node.left, node.right]
        elif isinstance(node, ast.Call):
            stack += [arg.value if isinstance(arg, ast.Keyword) else arg for arg in node.args]
