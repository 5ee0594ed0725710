"""Parse .arch text into the AST, turning Lark's exceptions into located `ResdslError`s."""

from __future__ import annotations

import functools
from dataclasses import replace

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import PatternStr

from resdsl import bundled, safety
from resdsl.errors import ResdslError, Span, did_you_mean, source_lines
from resdsl.frontend import ast
from resdsl.frontend.functions import FUNCTIONS
from resdsl.frontend.postlex import BracketLayoutAndLimits, LexLimit, Unclosed

# How a syntax error names what the parser wanted, for terminals that are patterns.
_READABLE = {
    "DIMS": "a size such as 3x3",
    "SCALED": "a multiple such as 4w",
    "FLOAT": "a decimal number",
    "INT": "a number",
    "NAME": "a name",
    "NETNAME": "a network name",
    "STRING": 'a quoted path such as "resnet34.arch"',
    "MAXPOOL": "'maxpool'",
    "AVGPOOL": "'avgpool'",
    "_REPEAT": "'x'",
    "_NL": "end of line",
    "$END": "end of file",
}
KEYWORDS = ("network", "extends", "param", "block", "conv", "maxpool", "avgpool", "fc",
            "softmax", "relu", "dropout", "stride", "pad", "se", "ceil")


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = bundled.folder("grammars").joinpath("arch.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=BracketLayoutAndLimits(),
                propagate_positions=True, maybe_placeholders=True, cache=True)


def parse(text: str, path: str) -> ast.ArchFile:
    """Parse one file's text. `path` is only used to label spans."""
    text = "\n".join(source_lines(text))  # Lark counts lines at \n alone, as spans do
    try:
        tree = _lark().parse(text)
    except Unclosed as unclosed:
        tok = unclosed.token
        raise ResdslError(f"'{tok.value}' is never closed", _token_span(tok, path),
                          hint=f"add the matching '{']' if tok.value == '[' else ')'}'",
                          source=text, code="E104") from None
    except LexLimit as hit:
        raise _with_source(safety.exceeded(hit.limit, hit.what, _token_span(hit.token, path),
                                           code=hit.code), text) from None
    except UnexpectedInput as error:
        raise _syntax_error(error, text, path) from None
    try:
        return _ToAst(path).transform(tree)
    except VisitError as error:  # Lark wraps what a transformer method raises
        if isinstance(error.orig_exc, ResdslError):
            raise _with_source(error.orig_exc, text) from None
        raise
    except RecursionError:  # only where the `nesting` or `expression` limit was raised
        raise ResdslError("the text nests deeper than Python's recursion limit allows",
                          Span(path, 1, 1), hint="lower --limit nesting or --limit "
                          "expression back towards their defaults", code="E602") from None


def _with_source(error: ResdslError, text: str) -> ResdslError:
    """The same error, now holding the text it points into (for the caret line)."""
    error.diagnostic = replace(error.diagnostic, source=text)
    return error


def _token_span(token: Token, path: str) -> Span:
    return Span(path, token.line, token.column, token.end_line, token.end_column)


def _syntax_error(error: UnexpectedInput, text: str, path: str) -> ResdslError:
    line, column = max(error.line, 1), max(error.column, 1)
    span = Span(path, line, column, line, column + 1)
    hint = None
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else "?"
        message = f"unexpected character {char!r}"
        hint = "an .arch file holds layers, sizes, names and numbers; '#' starts a comment"
    elif isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            message = "unexpected end of file"
        else:
            span = _token_span(token, path)
            what = "end of line" if token.type == "_NL" else repr(str(token))
            message = f"unexpected {what}"
            if token.type in ("NAME", "NETNAME"):
                hint = did_you_mean(str(token), KEYWORDS)
        accepts = error.accepts or error.expected
        if str(token) in ("x", "×") and "RSQB" in accepts:
            hint = "close the block with ']' before its repeat count: `[3x3, 64; 3x3, 64] x 3`"
        expected = _readable_expected(accepts)
        if expected:
            message += f"; expected {expected}"
        if hint is None and "COLON" in accepts:
            hint = "a stage line reads `name HxW : layers`, e.g. `conv1 112x112 : 7x7, 64, /2`"
    else:
        message = "syntax error"
    return ResdslError(message, span, hint=hint, source=text, code="E103")


def _readable_expected(names) -> str:
    terminals = {t.name: t for t in _lark().terminals}
    words = set()
    for name in names:
        term = terminals.get(name)
        if name in _READABLE:
            words.add(_READABLE[name])
        elif term is not None and isinstance(term.pattern, PatternStr):
            words.add(repr(term.pattern.value))
    ordered = sorted(words)
    if len(ordered) > 8:
        ordered = ordered[:8] + ["..."]
    return " or ".join(ordered) if len(ordered) <= 2 else ", ".join(ordered)


def _dims(token: Token, path: str) -> tuple[int, ...]:
    span = _token_span(token, path)
    parts = str(token).replace("×", "x").split("x")
    return tuple(safety.whole_number(part, span) for part in parts)


class _ToAst(Transformer):
    """Parse tree → AST. Method names are the grammar's rule names and aliases."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _span(self, meta) -> Span:
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    # expressions
    @v_args(meta=True)
    def int(self, meta, children):
        span = self._span(meta)
        return ast.Num(safety.whole_number(str(children[0]), span), span)

    @v_args(meta=True)
    def float(self, meta, children):
        span = self._span(meta)
        return ast.Num(safety.check_number(float(children[0]), span), span)

    @v_args(meta=True)
    def var(self, meta, children):
        return ast.Var(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def scaled(self, meta, children):
        text = str(children[0])
        digits = len(text) - len(text.lstrip("0123456789"))
        span = self._span(meta)
        return ast.BinOp("*", ast.Num(safety.whole_number(text[:digits], span), span),
                         ast.Var(text[digits:], span), span)

    @v_args(meta=True)
    def neg(self, meta, children):
        return ast.Neg(children[0], self._span(meta))

    def _binop(op):  # noqa: N805 - a factory for the three operator rules below
        @v_args(meta=True)
        def rule(self, meta, children):
            return ast.BinOp(op, children[0], children[1], self._span(meta))
        return rule

    add, sub, mul = _binop("+"), _binop("-"), _binop("*")
    div, floordiv = _binop("/"), _binop("//")

    # terms
    @v_args(meta=True)
    def conv(self, meta, children):
        return ast.Term("conv", self._span(meta), kernel=_dims(children[0], self.path))

    @v_args(meta=True)
    def maxpool(self, meta, children):
        return self._pool("maxpool", meta, children)

    @v_args(meta=True)
    def avgpool(self, meta, children):
        return self._pool("avgpool", meta, children)

    def _pool(self, kind, meta, children):
        kernel = _dims(children[0], self.path) if children[0] is not None else None
        return ast.Term(kind, self._span(meta), kernel=kernel)

    def _valued(kind):  # noqa: N805 - a factory for terms of the form `keyword value`
        @v_args(meta=True)
        def rule(self, meta, children):
            value = children[0] if children else None
            return ast.Term(kind, self._span(meta), value=value)
        return rule

    fc, dropout, stride, pad, se = (
        _valued("fc"), _valued("dropout"), _valued("stride"), _valued("pad"), _valued("se"))
    softmax, relu, ceil = _valued("softmax"), _valued("relu"), _valued("ceil")

    @v_args(meta=True)
    def option(self, meta, children):
        name, value = children
        return ast.Term("option", self._span(meta), name=str(name), value=value)

    @v_args(meta=True)
    def block(self, meta, children):
        body, repeat = children
        return ast.Term("block", self._span(meta), body=body, value=repeat)

    @v_args(meta=True)
    def channels(self, meta, children):
        """A number (a width), or, where it is `name(args)` and the name no function's, a
        block or an op called."""
        (value,) = children
        if isinstance(value, ast.Call) and value.name not in FUNCTIONS:
            return ast.Term("call", self._span(meta), name=value.name, args=value.args)
        return ast.Term("channels", self._span(meta), value=value)

    @v_args(meta=True)
    def repeated_call(self, meta, children):
        name, *args, repeat = children
        return ast.Term("call", self._span(meta), name=str(name),
                        args=tuple(a for a in args if a is not None), value=repeat)

    @v_args(meta=True)
    def call(self, meta, children):
        name, *args = children
        return ast.Call(str(name), tuple(a for a in args if a is not None), self._span(meta))

    @v_args(meta=True)
    def ceil_call(self, meta, children):  # the function, where `ceil` is also a keyword
        return ast.Call("ceil", tuple(a for a in children if a is not None), self._span(meta))

    @v_args(meta=True)
    def keyword(self, meta, children):
        name, value = children
        return ast.Keyword(str(name), value, self._span(meta))

    def bracket(self, children):
        return children[0]

    def terms(self, children):
        return tuple(children)

    # statements
    @v_args(meta=True)
    def network(self, meta, children):
        return ast.NetworkDecl(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def extends(self, meta, children):
        return ast.Extends(str(children[0])[1:-1], self._span(meta))

    @v_args(meta=True)
    def param(self, meta, children):
        return ast.ParamDecl(str(children[0]), children[1], self._span(meta))

    @v_args(meta=True)
    def block_def(self, meta, children):
        name, *params, body = children
        params = tuple(str(p) for p in params if p is not None)
        return ast.BlockDef(str(name), params, body, self._span(meta))

    @v_args(meta=True)
    def setting(self, meta, children):
        key, value = children
        if value.type in ("INT", "DIMS"):
            _dims(value, self.path)  # only to hold its numbers to the `number` limit
        return ast.Setting(str(key), str(value), self._span(meta), _token_span(value, self.path))

    @v_args(meta=True)
    def stage(self, meta, children):
        name, size, terms = children
        written = size is not None
        return ast.Stage(str(name), _dims(size, self.path) if written else None,
                         terms or (), self._span(meta),
                         _token_span(size, self.path) if written else None)

    @v_args(meta=True)
    def continuation(self, meta, children):
        return ast.Continuation(children[0], self._span(meta))

    def start(self, children):
        return ast.ArchFile(self.path, tuple(children))
