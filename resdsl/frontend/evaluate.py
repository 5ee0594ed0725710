"""Evaluate the arithmetic of an .arch file (`4w`, `n`, `2*n+1`, `(depth - 2) / 9`,
`w * d // 64 * C`) over known names only. `/` divides exactly (a whole result is a
whole number; `whole` refuses any other where one is needed), `//` rounds down as
Python and torchvision's `int(planes * (base_width / 64.))` do."""

from __future__ import annotations

from collections.abc import Mapping

from resdsl.errors import ResdslError, did_you_mean
from resdsl.frontend import ast
from resdsl.frontend.parser import KEYWORDS
from resdsl.safety import check_number

Number = int | float


def evaluate(expr: ast.Expr, env: Mapping[str, Number]) -> Number:
    if isinstance(expr, ast.Num):
        return expr.value
    if isinstance(expr, ast.Var):
        if expr.name not in env:
            raise ResdslError(f"unknown name '{expr.name}'", expr.span,
                              hint=did_you_mean(expr.name, _suggestions(env))
                              or "a name here is a parameter (`param n = 3`), a block's "
                                 "parameter, or `classes`", code="E201")
        return env[expr.name]
    if isinstance(expr, ast.Neg):
        return -evaluate(expr.operand, env)
    left, right = evaluate(expr.left, env), evaluate(expr.right, env)
    if expr.op in ("/", "//") and right == 0:
        raise ResdslError(f"division by zero: {left:g} {expr.op} 0", expr.right.span,
                          code="E307")
    if expr.op == "+":
        value = left + right
    elif expr.op == "-":
        value = left - right
    elif expr.op == "*":
        value = left * right
    elif expr.op == "//":
        value = left // right
    else:
        value = left / right
        value = int(value) if isinstance(left, int) and isinstance(right, int) \
            and left % right == 0 else value
    return check_number(value, expr.span)


def whole(expr: ast.Expr, env: Mapping[str, Number], what: str, minimum: int = 1) -> int:
    """Evaluate to a whole number of at least `minimum`, or say which value was wrong."""
    value = evaluate(expr, env)
    if isinstance(value, float):
        if not value.is_integer():
            raise ResdslError(f"{what} must be a whole number, not {value:g}", expr.span,
                              code="E302")
        value = int(value)
    if value < minimum:
        raise ResdslError(f"{what} must be at least {minimum}, not {value}", expr.span,
                          code="E303")
    return value


def _suggestions(env: Mapping[str, Number]):
    return list(env) + list(KEYWORDS)
