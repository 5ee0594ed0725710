"""Read an .arch file, follow `extends`, and merge the chain into one `NetworkSpec`.

A derived file overrides its parent by name: a setting, parameter or block of the same
name replaces the parent's, and a stage of the same name replaces the parent's stage in
place (new stages are appended). So plain-34 is ResNet-34 plus `shortcut none`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from resdsl import safety
from resdsl.errors import ResdslError, Span, source_lines
from resdsl.frontend import ast
from resdsl.frontend.parser import parse

@dataclass
class NetworkSpec:
    """Everything one network's text says, after inheritance, before evaluation."""

    path: str
    name: str
    span: Span | None = None  # the `network` line, else the file's first: for whole-file errors
    settings: dict[str, ast.Setting] = field(default_factory=dict)
    params: dict[str, ast.ParamDecl] = field(default_factory=dict)
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    stages: list[ast.Stage] = field(default_factory=list)


# What a path is when it is no regular file. Opening a FIFO waits for a writer, and a
# device may never end, so neither is ever opened.
_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                (stat.S_ISSOCK, "a socket"))


def read_source(path: str) -> str:
    """A file's text, or a ResdslError that says why it cannot be had."""
    limit = safety.current().file_size
    try:
        mode = os.stat(path).st_mode  # of the file a symlink leads to
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _NOT_REGULAR if test(mode)), "a special file")
            raise ResdslError(f"cannot read file: it is {kind}, not a regular file",
                              Span(path, 0, 0), code="E101")
        with open(path, "rb") as handle:  # read at most one byte past the limit, whatever
            data = handle.read(limit + 1)  # size the file claims (one in /proc claims 0)
            size = os.fstat(handle.fileno()).st_size
    except (OSError, ValueError) as error:  # ValueError: a path with a NUL byte
        raise ResdslError(f"cannot read file: {getattr(error, 'strerror', None) or error}",
                          Span(path, 0, 0), code="E101") from None
    if len(data) > limit:
        raise safety.exceeded("file_size", f"the file has {max(size, len(data)):,} bytes",
                              Span(path, 0, 0),
                              hint="an .arch file of a real network is a few kilobytes",
                              code="E601")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        lines = source_lines(data[: error.start].decode("utf-8"))
        raise ResdslError(f"the file is not UTF-8 text (byte 0x{data[error.start]:02x})",
                          Span(path, len(lines), len(lines[-1]) + 1),
                          hint="save the file as UTF-8",
                          code="E102") from None


def load_spec(path: str) -> NetworkSpec:
    """Parse `path` and the files it extends into one spec."""
    return _load(str(path), chain=())


def _resolved(path: str) -> str:
    """The absolute path, for cycle detection; a path the OS cannot resolve (a symlink
    loop, a NUL byte) stays as written, and reading it then says why it failed."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, ValueError):
        return os.path.abspath(path)


def _load(path: str, chain: tuple[str, ...]) -> NetworkSpec:
    key = _resolved(path)
    arch = parse(read_source(path), path)
    parents = [s for s in arch.statements if isinstance(s, ast.Extends)]
    if len(parents) > 1:
        raise ResdslError("a file may extend only one other file", parents[1].span, code="E208")
    parent_decl = parents[0] if parents else None
    if parent_decl is None:
        spec = NetworkSpec(path=path, name=Path(path).stem)
    else:
        parent_path = str(Path(path).parent / parent_decl.path)
        if _resolved(parent_path) in chain + (key,):
            raise ResdslError(f"'{parent_decl.path}' extends this file again: a cycle",
                              parent_decl.span, code="E207",
                              hint="a file may not extend itself, directly or not")
        if len(chain) + 1 >= safety.current().extends:
            raise safety.exceeded("extends", f"more than {len(chain) + 1} files extend one "
                                  "another", parent_decl.span, code="E606")
        try:
            spec = _load(parent_path, chain + (key,))
        except ResdslError as error:
            if error.span and error.span.line == 0 and error.span.file == parent_path:
                raise ResdslError(f"cannot extend '{parent_decl.path}': {error.message}",
                                  parent_decl.span, code=error.code) from None
            raise
        spec.path = path
        spec.name = Path(path).stem
    spec.span = next((s.span for s in arch.statements if isinstance(s, ast.NetworkDecl)),
                     Span(path, 1, 1))
    _merge(spec, arch)
    return spec


def _merge(spec: NetworkSpec, arch: ast.ArchFile) -> None:
    """Apply one file's statements on top of what it inherited."""
    seen_here: dict[tuple[str, str], Span] = {}

    def once(kind: str, name: str, span: Span) -> None:
        if (kind, name) in seen_here:
            first = seen_here[(kind, name)]
            raise ResdslError(f"{kind} '{name}' is defined twice in this file", span,
                              hint=f"the first is at line {first.line}", code="E204")
        seen_here[(kind, name)] = span

    stage_index = {stage.name: i for i, stage in enumerate(spec.stages)}
    current: ast.Stage | None = None
    for statement in arch.statements:
        if isinstance(statement, ast.Continuation):
            if current is None:
                raise ResdslError("these layers belong to no stage", statement.span,
                                  hint="start the line with a stage name, e.g. "
                                       "`conv1 112x112 : 7x7, 64, /2`", code="E404")
            current = replace(current, terms=current.terms + statement.terms)
            spec.stages[stage_index[current.name]] = current
            continue
        if isinstance(statement, ast.Stage):
            once("stage", statement.name, statement.span)
            current = statement
            if statement.name in stage_index:
                spec.stages[stage_index[statement.name]] = statement
            else:
                stage_index[statement.name] = len(spec.stages)
                spec.stages.append(statement)
            continue
        current = None
        if isinstance(statement, ast.NetworkDecl):
            once("network", "name", statement.span)
            spec.name = statement.name
        elif isinstance(statement, ast.Setting):
            once("setting", statement.key, statement.span)
            spec.settings[statement.key] = statement
        elif isinstance(statement, ast.ParamDecl):
            once("param", statement.name, statement.span)
            spec.params[statement.name] = statement
        elif isinstance(statement, ast.BlockDef):
            once("block", statement.name, statement.span)
            spec.blocks[statement.name] = statement
