"""The test split's loss and error, each rank reading its share and the sums combined.
`split` is on the device (`Split.to`)."""

from __future__ import annotations

import torch

from resdsl.training.data import Split
from resdsl.training.feed import batches
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
    with torch.no_grad(), autocast(process.device, amp):
        for x, y in batches(split, batch, seed, 0, process.rank, process.world, 0, workers,
                            process.device):
            out = model(x.contiguous(memory_format=layout)).float()
            total += torch.stack([
                torch.nn.functional.cross_entropy(out, y, reduction="sum").double(),
                (out.argmax(1) != y).sum().double(),
                torch.full((), float(len(y)), dtype=torch.float64, device=process.device)])
    model.train()
    loss, wrong, images = process.sum(total).tolist()
    return loss / images, wrong / images, int(images)
