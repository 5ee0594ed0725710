"""The post-lexer between Lark's lexer and parser: layout inside brackets, and the limits
that bound the depth of the parse tree."""

from __future__ import annotations

from lark import Token

from resdsl import safety


class BracketLayoutAndLimits:
    """Post-lexer: inside [ ] and ( ) a newline is only layout, as in the paper's rows.

    It also holds the limits on nesting and on operators per expression, which bound the
    depth of the parse tree, so that no file can drive the parser into Python's recursion
    limit."""

    always_accept = ("_NL",)
    _OPERATORS = ("PLUS", "MINUS", "STAR")
    _EXPRESSION_ENDS = ("COMMA", "SEMICOLON", "_NL", "COLON", "EQUAL", "LSQB", "RSQB", "_REPEAT")

    def process(self, stream):
        opened: list[Token] = []
        operators = 0
        limit = safety.current()
        for token in stream:
            if token.type in ("LSQB", "LPAR"):
                opened.append(token)
                if len(opened) > limit.nesting:
                    raise LexLimit(token, "nesting", f"{len(opened)} brackets are open here",
                                    "E602")
            elif token.type in ("RSQB", "RPAR") and opened:
                opened.pop()
            if token.type in self._OPERATORS:
                operators += 1
                if operators > limit.expression:
                    raise LexLimit(token, "expression", f"this expression has {operators} "
                                    "operators", "E603")
            elif token.type in self._EXPRESSION_ENDS:
                operators = 0
            if token.type == "_NL" and opened:
                continue
            yield token
        if opened:
            raise Unclosed(opened[-1])


class Unclosed(Exception):
    def __init__(self, token: Token):
        self.token = token


class LexLimit(Exception):
    def __init__(self, token: Token, limit: str, what: str, code: str):
        self.token, self.limit, self.what, self.code = token, limit, what, code
