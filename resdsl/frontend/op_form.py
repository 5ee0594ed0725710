"""The general op form: any registered op written by name, `sigmoid` or `lrn(size=5)`,
its arguments checked against the op's declaration (`resdsl.ops.registry`)."""

from __future__ import annotations

from collections.abc import Mapping

from resdsl.errors import ResdslError, Span, did_you_mean
from resdsl.frontend import ast
from resdsl.frontend.evaluate import Number, evaluate, whole
from resdsl.ops.registry import REQUIRED, op, registered


def names_an_op(name: str, env: Mapping[str, Number]) -> bool:
    """Whether `name` (not a parameter's) names a registered op."""
    return name not in env and name in registered()


def op_arguments(name: str, args, span: Span, env: Mapping[str, Number]) -> dict[str, object]:
    """A registered op in the general form: its arguments as its declaration says, with
    the defaults of those not given."""
    declared = op(name)
    if declared.arity != 1 or declared.torch is None:
        raise ResdslError(f"op '{name}' cannot be written as a layer", span, code="E209",
                          hint="a layer takes one input and builds a torch module")
    known = {arg.name: arg for arg in declared.args}
    given: dict[str, object] = {}
    for position, arg in enumerate(args):
        key, expr = (arg.name, arg.value) if isinstance(arg, ast.Keyword) else (
            list(known)[position] if position < len(known) else None, arg)
        if key not in known:
            hint = did_you_mean(key, known) if key else None
            raise ResdslError(f"op '{name}' has no argument {f'{key!r}' if key else position + 1}",
                              arg.span, code="E209",
                              hint=hint or f"its arguments: {', '.join(known) or 'none'}")
        if key in given:
            raise ResdslError(f"argument '{key}' is given twice", arg.span, code="E209")
        given[key] = _argument(known[key], expr, env)
    missing = [a.name for a in declared.args if a.default is REQUIRED and a.name not in given]
    if missing:
        raise ResdslError(f"op '{name}' needs {', '.join(missing)}", span, code="E209",
                          hint=f"write it as `{name}({missing[0]}=...)`")
    return {**declared.defaults(), **given}


def _argument(arg, expr, env: Mapping[str, Number]):
    types = arg.type if isinstance(arg.type, tuple) else (arg.type,)
    if int in types or bool in types:  # a switch is written 0 or 1
        return whole(expr, env, f"argument '{arg.name}'", minimum=0)
    if float in types:
        return float(evaluate(expr, env))
    raise ResdslError(f"argument '{arg.name}' cannot be written in a file", expr.span,
                      code="E209")
