"""resdsl: networks written like Table 1 of "Deep Residual Learning for Image Recognition",
compiled to a graph IR with shapes, parameter and multiply-add counts, PyTorch modules and
standalone PyTorch source.

`build`, `count`, `render`, `memory`, `diff` and `latency`'s estimates never import torch;
`load`, `source` and `stages` (the torch backend) import it on first use, so the analysis
commands start fast.
"""

from resdsl.api import build, count, diff, latency, memory, render
from resdsl.errors import ResdslError
from resdsl.ops.registry import Arg, OpDef
from resdsl.ops.registry import register as register_op
from resdsl.ops.registry import unregister as unregister_op
from resdsl.safety import limits
from resdsl.version import __version__

__all__ = ["build", "count", "diff", "latency", "memory", "render", "load", "source", "stages",
           "limits", "ResdslError", "OpDef", "Arg", "register_op", "unregister_op",
           "__version__"]

_TORCH_BACKEND = ("load", "source", "stages")


def __getattr__(name: str):
    if name in _TORCH_BACKEND:
        from resdsl import pytorch_api

        return getattr(pytorch_api, name)
    raise AttributeError(f"module 'resdsl' has no attribute {name!r}")
