"""Evaluate the arithmetic of an .arch file (`4w`, `n`, `2*n+1`, `(depth - 2) / 9`,
`w * d // 64 * C`, `make_divisible(w * 1.4, 8)`) over known names and functions only. `/` divides exactly (a whole result is a
whole number; `whole` refuses any other where one is needed), `//` rounds down as
Python and torchvision's `int(planes * (base_width / 64.))` do."""

from __future__ import annotations

from collections.abc import Mapping

from resdsl.errors import ResdslError, did_you_mean
from resdsl.frontend import ast
from resdsl.frontend.functions import FUNCTIONS
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
    if isinstance(expr, ast.Call):
        return _call(expr, env)
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


def _call(expr: ast.Call, env: Mapping[str, Number]) -> Number:
    function = FUNCTIONS.get(expr.name)
    if function is None:
        raise ResdslError(f"'{expr.name}' is no function of numbers", expr.span,
                          hint=did_you_mean(expr.name, list(FUNCTIONS))
                          or f"a block or an op is called as a term of its own (`{expr.name}"
                             f"(64) x 3`); the functions: {', '.join(FUNCTIONS)}", code="E201")
    keywords = [arg for arg in expr.args if isinstance(arg, ast.Keyword)]
    if keywords:
        raise ResdslError(f"{expr.name}() takes its arguments by position, not "
                          f"'{keywords[0].name}='", keywords[0].span, code="E205")
    if len(expr.args) not in function.arities:
        low, high = function.arities[0], function.arities[-1]
        counts = str(low) if low == high else f"{low} or {high}" if high == low + 1 \
            else f"{low} to {high}"
        raise ResdslError(f"{expr.name}() takes {counts} arguments, not {len(expr.args)}",
                          expr.span, hint=f"{expr.name}: {function.summary}", code="E205")
    args = [evaluate(arg, env) for arg in expr.args]
    try:
        value = function.call(*args)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        raise ResdslError(f"{expr.name}({', '.join(f'{a:g}' for a in args)}) has no value",
                          expr.span, hint=f"{expr.name}: {function.summary}", code="E308")
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
