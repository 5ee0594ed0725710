"""A resdsl network as a detection backbone (sec. 4.3 and the appendix): the outputs of
its named stages (`conv2_x` ... `conv5_x`, or `layer1` ... `layer4` under torchvision's
naming), as torchvision's detection models take them. Pure torch: torchvision's
FasterRCNN and FeaturePyramidNetwork plug into it, and the README shows how."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class Stages(nn.Module):
    """The network's children up to its last named stage. `forward` returns an
    OrderedDict of the named stages' outputs; `channels` are their widths, and
    `out_channels` the last one's (what a one-map detector such as the paper's reads).
    The widths come from the network's `feature_info` (which resdsl's modules carry, as
    timm's do), else from each stage's last conv, so any nn.Module with named stages
    works. The stages are the network's own modules, so its weights are shared."""

    def __init__(self, network: nn.Module, names: list[str]):
        super().__init__()
        children = OrderedDict(network.named_children())
        unknown = [name for name in names if name not in children]
        if unknown or not names:
            raise ValueError(f"no stage named {', '.join(unknown) or '(none given)'}; the "
                             f"network's stages are {', '.join(children)}")
        order = list(children)
        if [order.index(name) for name in names] != sorted(order.index(name) for name in names):
            raise ValueError(f"name the stages in forward order: {', '.join(order)}")
        for name in order[:order.index(names[-1]) + 1]:
            self.add_module(name, children[name])
        self.names = list(names)
        info = {f["module"]: f for f in getattr(network, "feature_info", None) or []}
        self.channels = [info[name]["num_chs"] if name in info else _width(children[name])
                         for name in names]
        self.out_channels = self.channels[-1]
        # the named stages' entries of the network's feature_info (timm's form), in order
        self.feature_info = [dict(info[name]) for name in names if name in info]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        outputs = OrderedDict()
        for name, stage in self.named_children():
            x = stage(x)
            if name in self.names:
                outputs[name] = x
        return outputs


def _width(stage: nn.Module) -> int:
    """A stage's output channels: its last conv's (a projection shortcut, registered
    after its unit's convs, maps to the same width)."""
    convs = [module for module in stage.modules() if isinstance(module, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(stage).__name__} has no convolution to take features from")
    return convs[-1].out_channels


def stages(network: nn.Module, names: list[str]) -> Stages:
    """`network`'s stages up to the last of `names`, returning each named stage's output:
    `stages(model, ["conv4_x"])` is the paper's shared trunk (conv1 ... conv4_x);
    `stages(model, ["conv2_x", "conv3_x", "conv4_x", "conv5_x"])` feeds an FPN."""
    return Stages(network, names)
