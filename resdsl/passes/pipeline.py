"""From an .arch file to its verified graph: parse, elaborate, then run the passes in
order, optionally dumping the IR after each one (`--dump-ir`)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

import networkx as nx

from resdsl import bundled
from resdsl.errors import ResdslError, ResdslWarning
from resdsl.frontend.config import last_of, split_variant
from resdsl.frontend.resolve import load_spec
from resdsl.ir.dump import dump
from resdsl.ir.elaborate import elaborate
from resdsl.passes.count_costs import CountCosts
from resdsl.passes.infer_shapes import InferShapes
from resdsl.passes.insert_shortcuts import InsertShortcuts
from resdsl.passes.verify import Verify

PIPELINE = (InferShapes(), InsertShortcuts(), CountCosts(), Verify())


def run_pipeline(graph: nx.DiGraph, dump_to: Callable[[str], None] | None = None) -> nx.DiGraph:
    if dump_to:
        dump_to(dump(graph, "after elaborate"))
    for step in PIPELINE:
        step.apply(graph)
        if dump_to:
            dump_to(dump(graph, f"after {step.name}"))
    return graph


def build(path: str, dump_to: Callable[[str], None] | None = None, **params) -> nx.DiGraph:
    """Parse, elaborate and run every pass. `path` is an .arch file or the name of a
    bundled network (`resnet50`), either with `@name=value,...` after it; `params` and
    those values override parameters and settings as `--set` does, the `@` ones winning
    (`build("archs/cifar-resnet.arch", n=18)`, `build("cifar-resnet@n=18")`). Warnings
    (W1xx) are issued as `ResdslWarning`s and kept in `graph.graph["warnings"]`."""
    path, own = split_variant(str(path))
    own, repeated = last_of(own, given_as=f"{path}@")
    graph = elaborate(load_spec(bundled.find_arch(path)), {**params, **own})
    graph.graph["warnings"][:0] = repeated
    try:
        run_pipeline(graph, dump_to)
    except ResdslError as error:
        error.warnings = graph.graph["warnings"]
        raise
    for diagnostic in graph.graph["warnings"]:
        warnings.warn(ResdslWarning(diagnostic), stacklevel=_callers_level())
    return graph


def _callers_level() -> int:
    """The `stacklevel` of the first frame outside resdsl, so that a warning names the
    caller's line (`resdsl.count(...)` in a script), not resdsl's own."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("resdsl"):
        frame, level = frame.f_back, level + 1
    return level
