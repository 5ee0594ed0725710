"""Batches on the training device, in an order that is a pure function of the seed, the
epoch and the batch's position, so a resumed run sees exactly the batches it would have
seen, whatever the number of loader workers.

- In-memory splits (CIFAR, synthetic) are moved to the device once (`Split.to`). An
  epoch's order and its augmentation parameters go there in one copy each, and every
  batch is a gather and the CIFAR augmentation on the device: no DataLoader, no
  per-batch copy from the host.
- Image files are decoded by DataLoader workers into pinned uint8 canvases with their
  crop boxes. On a GPU the next batch is copied on a stream of its own while the current
  step runs, and the crop, resize and flip run on the device (`augment.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from resdsl.errors import ResdslError, Span
from resdsl.training.augment import collate, crop_resize_flip, decode, draw_crops, pad_crop_flip
from resdsl.training.data import Split

PAD = 4  # CIFAR's padding before the random crop (sec. 4.2)


class EpochBatches(Dataset):
    """The batches of one epoch for this process, from batch `first` on. A training split
    is shuffled by a `DistributedSampler` and its last partial batch dropped; a test
    split is read in order, once. Item k (files only) is batch k decoded, a pure function
    of (seed, epoch, k), so workers can make items in parallel."""

    def __init__(self, split: Split, batch: int, seed: int, epoch: int, rank: int, world: int,
                 first: int = 0):
        if split.train:
            sampler = DistributedSampler(range(len(split)), num_replicas=world, rank=rank,
                                         shuffle=True, seed=seed, drop_last=True)
            sampler.set_epoch(epoch)
            order = list(sampler)
            count = len(order) // batch
        else:  # every image once, none repeated to even out the ranks
            order = list(range(rank, len(split), world))
            count = -(-len(order) // batch)
        self.batches = [order[k * batch:(k + 1) * batch] for k in range(first, count)]
        self.split, self.seed, self.epoch, self.rank, self.first = split, seed, epoch, rank, first

    def __len__(self) -> int:
        return len(self.batches)

    def generator(self, k: int) -> torch.Generator:
        """Batch k's own random numbers."""
        position = ((self.seed * 1_000_003 + self.epoch) * 1_000_003 + self.first + k) * 4099
        return torch.Generator().manual_seed((position + self.rank) % 2**63)

    def __getitem__(self, k: int):
        split, generator = self.split, self.generator(k)
        try:
            images, boxes = zip(*(decode(split.images[i], split.crop, split.scale,
                                         split.train, generator) for i in self.batches[k]))
        except ResdslError as error:  # it cannot be pickled back from a worker
            return Unreadable(error.span.file, error.message)
        return collate(list(images)), torch.tensor(boxes), split.labels[self.batches[k]]


@dataclass
class Unreadable:
    """An image file that a worker could not decode, in place of its batch."""

    path: str
    message: str


def batches_per_epoch(split: Split, batch: int, world: int) -> int:
    return (len(split) // world) // batch


def batches(split: Split, batch: int, seed: int, epoch: int, rank: int, world: int,
            first: int, workers: int, device: torch.device) -> Iterator:
    """This rank's (images, labels) of `epoch` from batch `first` on, on `device`, ready
    for the model: augmented where the split trains, the mean subtracted. `split` must
    already be on `device` (`Split.to`)."""
    epoch_batches = EpochBatches(split, batch, seed, epoch, rank, world, first)
    if split.in_memory:
        yield from _from_memory(epoch_batches, device)
        return
    loader = DataLoader(epoch_batches, batch_size=None, num_workers=workers,
                        pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(seed))
    for canvas, boxes, labels in _to_device(readable(loader), device):
        yield crop_resize_flip(canvas, boxes, split.crop) - split.mean, labels


def readable(loader: DataLoader) -> Iterator:
    """The loader's batches; a worker's Unreadable becomes the E706 it stands for."""
    for batch in loader:
        if isinstance(batch, Unreadable):
            raise ResdslError(batch.message, Span(batch.path, 0, 0),
                              hint="remove or replace the file", code="E706")
        yield batch


def _from_memory(epoch_batches: EpochBatches, device: torch.device) -> Iterator:
    split = epoch_batches.split
    sizes = [len(indices) for indices in epoch_batches.batches]
    if not sizes:
        return
    order = torch.tensor(list(chain(*epoch_batches.batches))).to(device).split(sizes)
    crops = None
    if split.train:  # every batch's crops, drawn from its own generator, in one copy
        crops = torch.cat([draw_crops(size, PAD, epoch_batches.generator(k))
                           for k, size in enumerate(sizes)]).to(device).split(sizes)
    for k, indices in enumerate(order):
        x = split.images[indices].float() / 255
        if crops is not None:
            x = pad_crop_flip(x, PAD, crops[k])
        yield x - split.mean, split.labels[indices]


def _to_device(loader: DataLoader, device: torch.device) -> Iterator:
    """The loader's batches on `device`. On a GPU each batch's copy from pinned memory
    runs on a side stream, enqueued before the previous batch is handed out, so it
    overlaps that batch's step; an event makes the step wait for its own copy only."""
    if device.type != "cuda":
        for batch in loader:
            yield [tensor.to(device) for tensor in batch]
        return
    side = torch.cuda.Stream(device)

    def copy(batch):
        with torch.cuda.stream(side):
            moved = [tensor.to(device, non_blocking=True) for tensor in batch]
            done = torch.cuda.Event()
            done.record(side)
        return moved, done

    def ready(moved, done):
        current = torch.cuda.current_stream(device)
        current.wait_event(done)
        for tensor in moved:
            tensor.record_stream(current)  # not reused by the side stream too early
        return moved

    pending = None
    for batch in loader:
        copied = copy(batch)
        if pending is not None:
            yield ready(*pending)
        pending = copied
    if pending is not None:
        yield ready(*pending)
