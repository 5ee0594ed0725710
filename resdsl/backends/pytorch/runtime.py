"""Turn generated source into live classes, and a built graph into a module.

The source is compiled under a file name of its own and put in `linecache`, so that
tracebacks, `inspect.getsource`, `torch.fx` and `torch.compile` see real lines; the
module is registered in `sys.modules`, so identical source gives identical classes.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from collections.abc import Mapping

import networkx as nx
import torch

from resdsl.backends.pytorch.plan import Plan, make_plan
from resdsl.backends.pytorch.source import emit
from resdsl.errors import ResdslError, Span
from resdsl.passes.fold_batchnorm import FoldBatchNorm
from resdsl.version import __version__


def generate(graph: nx.DiGraph, naming: str = "arch", fold_bn: bool = False) -> tuple[str, Plan]:
    """The Python source for a built graph, and the plan it was written from."""
    if fold_bn:
        graph = graph.copy()
        FoldBatchNorm().apply(graph)
    plan = make_plan(graph, naming)
    return emit(plan, __version__), plan


def import_source(text: str) -> types.ModuleType:
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = f"resdsl_generated_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    filename = f"<resdsl generated {digest}>"
    module = types.ModuleType(name)
    module.__file__ = filename
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    exec(compile(text, filename, "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def network_class(graph: nx.DiGraph, naming: str = "arch", fold_bn: bool = False) -> type:
    text, plan = generate(graph, naming, fold_bn)
    return getattr(import_source(text), plan.class_name)


def from_graph(graph: nx.DiGraph, *, naming: str = "arch", fold_bn: bool = False,
               zero_init_residual: bool = False,
               state_dict: Mapping | None = None) -> torch.nn.Module:
    """The module of a graph that is already built (and whose memory was checked)."""
    model = network_class(graph, naming)(zero_init_residual=zero_init_residual)
    if state_dict is not None:
        _load_strict(model, state_dict, graph.graph["file"])
    if not fold_bn:
        return model
    return network_class(graph, naming, fold_bn=True).from_unfolded(model.state_dict())


def _load_strict(model: torch.nn.Module, state_dict: Mapping, path: str) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        detail = " ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise ResdslError(f"the state dict does not fit {type(model).__name__}: "
                          f"{detail[:300] + ('…' if len(detail) > 300 else '')}",
                          Span(str(path), 0, 0),
                          hint="the network (file and --set values) and the naming "
                               "must be those the weights were saved from: a torchvision "
                               "state dict needs naming='torchvision' (--naming "
                               "torchvision)", code="E705") from None
