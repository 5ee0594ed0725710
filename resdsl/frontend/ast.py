"""The AST of an .arch file: plain dataclasses, each holding the span it was parsed from."""

from __future__ import annotations

from dataclasses import dataclass

from resdsl.errors import Span


# Expressions (channel counts, repeats, strides, parameter defaults).

@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Var:
    name: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # '+', '-', '*', '/', '//'
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    """`name(args)` in a number: a function (`max(w, 16)`); as a term of its own, a block
    or an op called."""

    name: str
    args: tuple  # of Expr and Keyword
    span: Span


Expr = Num | Var | BinOp | Neg | Call


# Terms: the comma-separated items of a stage; grouped into layers during elaboration.

@dataclass(frozen=True)
class Term:
    """One item of a stage line.

    kind is one of: conv (kernel), maxpool / avgpool (kernel or None = global), fc (value),
    softmax, relu, dropout (value or None), stride (value), pad (value), channels (value),
    se (value: the reduction ratio), ceil, option (name = value: `C=32`, `bias=on`),
    block (body, value = repeat or None), call (name, args, value = repeat or None).
    """

    kind: str
    span: Span
    kernel: tuple[int, ...] | None = None
    value: Expr | None = None
    body: tuple["Term", ...] = ()
    name: str | None = None
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Keyword:
    """`name=value` among an op's arguments."""

    name: str
    value: Expr
    span: Span


# Statements.

@dataclass(frozen=True)
class NetworkDecl:
    name: str
    span: Span


@dataclass(frozen=True)
class Extends:
    path: str
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    name: str
    default: Expr
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[str, ...]
    body: tuple[Term, ...]
    span: Span


@dataclass(frozen=True)
class Setting:
    key: str
    value: str  # as written; settings.py gives it a type
    span: Span
    value_span: Span


@dataclass(frozen=True)
class Stage:
    name: str
    size: tuple[int, ...] | None  # the output-size column, e.g. (56, 56)
    terms: tuple[Term, ...]
    span: Span
    size_span: Span | None = None  # where the column is written


@dataclass(frozen=True)
class Continuation:
    """A line of bare terms: it continues the stage above it."""

    terms: tuple[Term, ...]
    span: Span


Statement = NetworkDecl | Extends | ParamDecl | BlockDef | Setting | Stage | Continuation


@dataclass(frozen=True)
class ArchFile:
    path: str
    statements: tuple[Statement, ...]
