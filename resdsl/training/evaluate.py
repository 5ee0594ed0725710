"""The test split's loss and error, each rank reading its share and the sums combined."""

from __future__ import annotations

import torch

from resdsl.training.data import Split, epoch_loader
from resdsl.training.process import Process
from resdsl.training.step import autocast, memory_format


def evaluate(model: torch.nn.Module, split: Split, batch: int, process: Process, *,
             seed: int, amp: str | None, channels_last: bool, workers: int
             ) -> tuple[float, float, int]:
    """(mean loss, error, images) over the whole split, in eval mode; the model is back in
    training mode afterwards."""
    process.share_buffers(model)
    model.eval()
    layout = memory_format(channels_last)
    total = torch.zeros(3, dtype=torch.float64, device=process.device)
    batches = epoch_loader(split, batch, seed, 0, process.rank, process.world, 0, workers,
                           pin_memory=False)
    with torch.no_grad(), autocast(process.device, amp):
        for x, y in batches:
            out = model(x.to(process.device, memory_format=layout)).float()
            y = y.to(process.device)
            total += torch.stack([
                torch.nn.functional.cross_entropy(out, y, reduction="sum").double(),
                (out.argmax(1) != y).sum().double(),
                torch.full((), float(len(y)), dtype=torch.float64, device=process.device)])
    model.train()
    loss, wrong, images = process.sum(total).tolist()
    return loss / images, wrong / images, int(images)
