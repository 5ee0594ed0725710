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
from resdsl.bundled import bundled_archs
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


CHUNK = 1 << 20


def read_source(path: str) -> str:
    """A file's text, or a ResdslError that says why it cannot be had."""
    limit = safety.current().file_size
    try:
        mode = os.stat(path).st_mode  # of the file a symlink leads to
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _NOT_REGULAR if test(mode)), "a special file")
            raise ResdslError(f"cannot read file: it is {kind}, not a regular file",
                              Span(path, 0, 0), code="E101")
        with open(path, "rb") as handle:  # at most one byte past the limit, whatever
            data = _read_at_most(handle, limit + 1)  # size the file claims (/proc: 0)
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


def _read_at_most(handle, count: int) -> bytes:
    """Up to `count` bytes, a chunk at a time: a raised `file_size` limit allocates
    nothing that the file does not fill."""
    chunks = []
    while count > 0 and (chunk := handle.read(min(count, CHUNK))):
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def load_spec(path: str) -> NetworkSpec:
    """Parse `path` and the files it extends into one spec: the chain is read from the
    file up to its root, then merged from the root down (a loop, not a recursion, so a
    chain as long as the `extends` limit allows cannot exhaust Python's stack)."""
    path = str(path)
    chain = [(path, _parse_one(path))]  # (path, parsed file), from `path` up to the root
    seen = {_resolved(path)}
    while (parent_decl := _parent(chain[-1][1])) is not None:
        child = chain[-1][0]
        parent_path = str(Path(child).parent / parent_decl.path)
        if _resolved(parent_path) in seen:
            raise ResdslError(f"'{parent_decl.path}' extends this file again: a cycle",
                              parent_decl.span, code="E207",
                              hint="a file may not extend itself, directly or not")
        if len(chain) >= safety.current().extends:
            raise safety.exceeded("extends", f"more than {len(chain)} files extend one "
                                  "another", parent_decl.span, code="E606")
        try:
            chain.append((parent_path, _parse_one(parent_path)))
        except ResdslError as error:
            if error.span and error.span.line == 0 and error.span.file == parent_path:
                raise ResdslError(f"cannot extend '{parent_decl.path}': {error.message}",
                                  parent_decl.span, code=error.code,
                                  hint=_bundled_hint(parent_decl.path)) from None
            raise
        seen.add(_resolved(parent_path))
    spec = NetworkSpec(path=chain[-1][0], name=Path(chain[-1][0]).stem)
    for file_path, arch in reversed(chain):
        spec.path, spec.name = file_path, Path(file_path).stem
        spec.span = next((s.span for s in arch.statements if isinstance(s, ast.NetworkDecl)),
                         Span(file_path, 1, 1))
        _merge(spec, arch)
    return spec


def _bundled_hint(parent: str) -> str | None:
    """Where a missing parent is a network that ships with resdsl, say where it is: a
    path in `extends` is read beside the file, never found by name."""
    shipped = bundled_archs().get(Path(parent).stem)
    if shipped is None or Path(parent).suffix != ".arch":
        return None
    return (f"'{Path(parent).stem}' ships with resdsl as {shipped}: copy it (and the files "
            "it extends) beside this file, or extend it by that path")


def _resolved(path: str) -> str:
    """The absolute path, for cycle detection; a path the OS cannot resolve (a symlink
    loop, a NUL byte) stays as written, and reading it then says why it failed."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, ValueError):
        return os.path.abspath(path)


def _parse_one(path: str) -> ast.ArchFile:
    return parse(read_source(path), path)


def _parent(arch: ast.ArchFile) -> ast.Extends | None:
    """The file's `extends` statement; a file may have one at most."""
    parents = [s for s in arch.statements if isinstance(s, ast.Extends)]
    if len(parents) > 1:
        raise ResdslError("a file may extend only one other file", parents[1].span, code="E208")
    return parents[0] if parents else None


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
