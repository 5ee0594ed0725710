"""The Python API of the analysis path: .arch file → verified IR graph → summary.

Nothing here imports torch; `resdsl.load` (the torch backend) is separate.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from resdsl.backends.summary import NetworkSummary, summarize
from resdsl.frontend.resolve import load_spec
from resdsl.ir.elaborate import elaborate
from resdsl.passes.pipeline import run_pipeline


def build(path: str, dump_to: Callable[[str], None] | None = None, **params) -> nx.DiGraph:
    """Parse, elaborate and run every pass. `params` override parameters and settings as
    `--set` does (`build("archs/cifar-resnet.arch", n=18)`)."""
    return run_pipeline(elaborate(load_spec(str(path)), params), dump_to)


def count(path: str, **params) -> NetworkSummary:
    """Params and multiply-adds per stage and in total (see `summary.CONVENTION`)."""
    return summarize(build(path, **params))
