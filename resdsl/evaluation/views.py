"""The paper's test-time views of a batch of images, each a set of network inputs in
[0, 1] whose softmax scores are averaged per image.

- `center`: what training evaluates: the image itself for CIFAR-sized data, the centre
  224 of an image resized to 256 for image files.
- `10-crop` (sec. 3.4, after AlexNet): the four corner crops and the centre crop, and
  their mirror images. For image files they are taken from the image resized to 256; for
  CIFAR-sized data from the image padded by 4 pixels, as training pads it.
- `multi-scale` (sec. 3.4, after VGG): the whole image, its shorter side resized to each
  scale ({224, 256, 384, 480, 640} for 224 networks, the same ratios for others), through
  the fully-convolutional network: the final pool is global, so any size works.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from resdsl.errors import ResdslError
from resdsl.training.augment import collate, crop_resize_flip, decode, pad_crop_flip
from resdsl.training.data import Split
from resdsl.training.feed import PAD, Unreadable, readable

PAPER_SCALES = (224, 256, 384, 480, 640)
CROPS = (("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right"),
         ("middle", "middle"))


def default_scales(crop: int) -> tuple[int, ...]:
    """The paper's scales for a 224 network; the same ratios to the crop for others."""
    return tuple(round(scale * crop / 224) for scale in PAPER_SCALES)


@dataclass
class Batch:
    """Test images as views need them: in-memory uint8 images, or each file decoded for
    the crops (at EVAL_SIDE, with its centre box) and whole (for multi-scale)."""

    labels: torch.Tensor
    images: torch.Tensor | None = None  # N x C x H x W, in-memory splits
    canvas: torch.Tensor | None = None  # files: collated, decoded for crops
    boxes: torch.Tensor | None = None  # files: each centre box (augment.crop_resize_flip)
    wholes: list[torch.Tensor] | None = None  # files: each image, decoded for multi-scale

    def to(self, device: torch.device) -> "Batch":
        """The batch on `device`, copied once for all its views and every model."""
        move = (lambda t: t if t is None else t.to(device))
        return Batch(move(self.labels), move(self.images), move(self.canvas), self.boxes,
                     [move(image) for image in self.wholes] if self.wholes else self.wholes)


def views(test: str, batch: Batch, crop: int,
          scales: tuple[int, ...]) -> Iterator[tuple[slice, torch.Tensor]]:
    """(which images of the batch, their inputs) for each view of `test`, on the device
    that holds the batch (`Batch.to`)."""
    everyone = slice(None)
    if test == "center":
        yield everyone, _center(batch, crop)
    elif test == "10-crop":
        for flip in (0, 1):
            for dy, dx in CROPS:
                yield everyone, _crop(batch, crop, dy, dx, flip)
    elif batch.images is not None:  # multi-scale, all one size
        whole = _whole_boxes(batch.images)
        for scale in scales:
            yield everyone, crop_resize_flip(batch.images, whole, (scale, scale))
    else:  # multi-scale, each file at its own aspect ratio
        for i, image in enumerate(batch.wholes):
            for scale in scales:
                height, width = image.shape[1:]
                size = (round(height * scale / min(height, width)),
                        round(width * scale / min(height, width)))
                yield slice(i, i + 1), crop_resize_flip(image[None], _whole_boxes(image[None]),
                                                        size)


def _center(batch: Batch, crop: int) -> torch.Tensor:
    if batch.images is not None:
        return batch.images.float() / 255
    return crop_resize_flip(batch.canvas, batch.boxes, crop)


def _crop(batch: Batch, crop: int, dy: str, dx: str, flip: int) -> torch.Tensor:
    """One of the ten crops, of every image in the batch."""
    if batch.images is not None:  # offsets in the padded image, as training crops it
        offset = {"top": 0, "left": 0, "middle": PAD, "bottom": 2 * PAD, "right": 2 * PAD}
        rows = torch.tensor([[offset[dy], offset[dx], flip]] * len(batch.labels))
        return pad_crop_flip(batch.images.float() / 255, PAD, rows.to(batch.images.device))
    top, left, height, width, _, image_h, image_w = batch.boxes.unbind(1)
    top = {"top": 0 * top, "middle": top, "bottom": image_h - height}[dy]
    left = {"left": 0 * left, "middle": left, "right": image_w - width}[dx]
    boxes = torch.stack([top, left, height, width, torch.full_like(top, flip), image_h,
                         image_w], 1)
    return crop_resize_flip(batch.canvas, boxes, crop)


def _whole_boxes(images: torch.Tensor) -> torch.Tensor:
    n, _, height, width = images.shape
    return torch.tensor([[0, 0, height, width, 0, height, width]] * n, dtype=torch.float32)


class _Files(Dataset):
    def __init__(self, split: Split, whole_side: int | None):
        self.split, self.whole_side = split, whole_side

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        path: Path = self.split.images[i]
        try:
            image, box = decode(path, self.split.crop, None, False, None)
            whole = None
            if self.whole_side:  # decoded again, at (at least) the largest scale
                whole, _ = decode(path, self.whole_side, None, False, None,
                                  side=self.whole_side)
        except ResdslError as error:  # it cannot be pickled back from a worker
            return Unreadable(error.span.file, error.message)
        return image, box, whole, self.split.labels[i]


def _collate(items: list) -> list | Unreadable:
    """A batch's items as lists, or the first file that could not be read."""
    unreadable = [item for item in items if isinstance(item, Unreadable)]
    return unreadable[0] if unreadable else list(zip(*items))


def batches(split: Split, batch: int, tests: tuple[str, ...], scales: tuple[int, ...],
            workers: int) -> Iterator[Batch]:
    """The test split in order, `batch` images at a time, decoded by `workers` processes
    when it is files."""
    if split.in_memory:
        for first in range(0, len(split), batch):
            part = slice(first, first + batch)
            yield Batch(split.labels[part], images=split.images[part])
        return
    whole_side = max(scales) if "multi-scale" in tests else None
    loader = DataLoader(_Files(split, whole_side), batch_size=batch, num_workers=workers,
                        collate_fn=_collate)
    for images, boxes, wholes, labels in readable(loader):
        yield Batch(torch.stack(labels), canvas=collate(list(images)),
                    boxes=torch.tensor(boxes), wholes=list(wholes) if whole_side else None)

