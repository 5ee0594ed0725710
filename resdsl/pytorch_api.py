"""The torch side of the Python API: `resdsl.load` and `resdsl.source`, from an .arch
file (or a bundled name) to a module or to the source `resdsl compile` writes, and
`resdsl.stages`, a network's stage outputs for detection. Imported
on first use (`resdsl.load`), so the analysis path never loads torch."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from resdsl.api import build
from resdsl.backends.pytorch import memory
from resdsl.backends.pytorch.devices import resolve_device
from resdsl.backends.pytorch.features import stages
from resdsl.backends.pytorch.runtime import from_graph, generate


def source(path: str, *, naming: str = "arch", fold_bn: bool = False, **params) -> str:
    """The standalone PyTorch source that `resdsl compile` writes for an .arch file."""
    return generate(build(path, **params), naming, fold_bn)[0]


def load(path: str, *, naming: str = "arch", fold_bn: bool = False,
         zero_init_residual: bool = False, state_dict: Mapping | None = None,
         device: str | torch.device | None = None, **params) -> torch.nn.Module:
    """The network of an .arch file as a `torch.nn.Module`, initialised as in the paper.

    `params` override parameters and settings as `--set` does. `naming="torchvision"`
    names modules as torchvision's ResNet does (`layer2.0.downsample.0`), so its state
    dicts load either way. `state_dict` (of the unfolded network, as training saves it)
    is loaded strictly. `fold_bn=True` returns the inference network with each BN folded
    into its conv, in eval mode. `device` ("cuda", "cuda:1") is where the module goes;
    its memory is checked against that device's, before anything is allocated.
    """
    graph = build(path, **params)
    target = resolve_device(str(device)) if device is not None else torch.device("cpu")
    memory.require(graph, target)
    model = from_graph(graph, naming=naming, fold_bn=fold_bn,
                       zero_init_residual=zero_init_residual, state_dict=state_dict)
    return model.to(target) if device is not None else model

__all__ = ["load", "source", "stages"]
