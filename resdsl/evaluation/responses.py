"""Figure 7: how strongly each 3x3 layer responds. A layer's response is its output
after BN and before the ReLU or the addition; its strength is the standard deviation of
all of its values (every channel and position) over the test images. The paper finds
that residual layers respond less than plain ones, and less the deeper the network."""

from __future__ import annotations


import torch
from torch import nn

from resdsl.evaluation.members import Member
from resdsl.evaluation.views import batches, views
from resdsl.training.curves import figure_format, pyplot, save
from resdsl.training.progress import ImageProgress
from resdsl.training.data import Split


def three_by_three(model: nn.Module) -> list[nn.BatchNorm2d]:
    """The BN after each 3x3 conv, in forward order (generated modules register each
    conv just before its BN)."""
    layers, conv = [], None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            conv = module
        elif isinstance(module, nn.BatchNorm2d) and conv is not None:
            if conv.kernel_size == (3, 3):
                layers.append(module)
            conv = None
    return layers


def measure(member: Member, split: Split, batch: int, device: torch.device, workers: int,
            progress: bool) -> list[float]:
    """The standard deviation of each 3x3 layer's response over `split`, in layer order."""
    layers = three_by_three(member.model)
    sums = torch.zeros(len(layers), 3, dtype=torch.float64, device=device)

    def hook(index):
        def record(_module, _inputs, output):
            values = output.detach().double()
            sums[index] += torch.stack([values.sum(), (values * values).sum(),
                                        torch.tensor(values.numel(), device=device)])
        return record

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    mean = split.mean.to(device)
    try:
        with torch.no_grad(), ImageProgress(progress, len(split), member.path) as bar:
            for images in batches(split, batch, ("center",), (), workers):
                for _, x in views("center", images.to(device), split.crop, ()):
                    member.scores(x, mean)
                bar.update(len(images.labels))
    finally:
        for handle in handles:
            handle.remove()
    total, squares, count = sums.T
    return ((squares / count - (total / count) ** 2).clamp(min=0).sqrt()).tolist()


def draw(responses: dict[str, list[float]], output: str) -> None:
    """The paper's Figure 7: std by layer index (top) and sorted by magnitude (bottom);
    plain nets dashed, residual nets solid."""
    figure_format(output)
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, (by_layer, ranked) = plt.subplots(2, 1, figsize=(6.5, 6), dpi=130)
    for (label, stds), colour in zip(responses.items(), plt.rcParams["axes.prop_cycle"]
                                     .by_key()["color"] * 10):
        style = "--" if label.lower().startswith("plain") else "-"
        index = range(1, len(stds) + 1)
        by_layer.plot(index, stds, style, color=colour, label=label, linewidth=1.4)
        ranked.plot(index, sorted(stds, reverse=True), style, color=colour, label=label,
                    linewidth=1.4)
    by_layer.set_xlabel("layer index (original)")
    ranked.set_xlabel("layer index (sorted by magnitude)")
    for axis in (by_layer, ranked):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel("std")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    save(figure, output)
