"""The paper's augmentation as batched tensor ops on the training device.

Random parameters are drawn on the CPU from the batch's own generator, seeded by
(seed, epoch, position), and only then moved to the device: a batch is augmented alike
on every device and by any number of loader workers, so a resumed run stays bit-exact.

- CIFAR (sec. 4.2): pad 4 pixels, take a random 32x32 crop, flip half: one gather.
- ImageNet (sec. 3.4): shorter side resized to a random size in [256, 480], a random
  224 crop, flip half. A worker decodes the file (JPEG at a reduced scale where that
  still covers the crop) and draws the crop's box in the decoded image's pixels; on the
  device one `grid_sample` call crops, resizes (bilinear) and flips the whole batch.
  Evaluation takes the centre 224 of the image resized to 256 (resdsl/evaluation adds
  the paper's 10-crop and multi-scale views).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from resdsl.errors import ResdslError, Span

EVAL_SIDE = 256  # the shorter side that evaluation's centre crop is taken from


def draw_crops(n: int, pad: int, generator: torch.Generator) -> torch.Tensor:
    """CIFAR's random parameters for `n` images: rows of (dy, dx, flip)."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = (torch.rand(n, generator=generator) < 0.5).long()
    return torch.stack([dy, dx, flip], 1)


def pad_crop_flip(x: torch.Tensor, pad: int, crops: torch.Tensor) -> torch.Tensor:
    """CIFAR augmentation of a batch `x` (N x C x H x W) with `draw_crops`' parameters,
    on the device that holds both."""
    n, _, h, w = x.shape
    dy, dx, flip = crops.unbind(1)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    cols = torch.where(flip[:, None, None, None] > 0, cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def decode(path: Path, crop: int, scale: tuple[int, int] | None, train: bool,
           generator: torch.Generator | None, side: int = EVAL_SIDE
           ) -> tuple[torch.Tensor, list[float]]:
    """One image file as uint8 C x H x W, and the row of `crop_resize_flip`'s boxes that
    makes the `crop` x `crop` output: a `crop` square of the image resized to a shorter
    side drawn from `scale` (or, not training, with neither `scale` nor `generator`, the
    centre of the image resized to `side`)."""
    from PIL import Image

    try:
        return _decode(Image, path, crop, scale, train, generator, side)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ResdslError(f"cannot read this image: {error}", Span(str(path), 0, 0),
                          code="E706") from None


def _decode(Image, path, crop, scale, train, generator, side):
    with Image.open(path) as image:
        w, h = image.size
        if train:
            side = int(torch.randint(scale[0], scale[1] + 1, (1,), generator=generator))
        factor = max(side, crop) / min(w, h)  # resized pixels per original pixel
        # A JPEG decodes at 1/2, 1/4 or 1/8 scale for little cost; keep the box's pixels.
        image.draft("RGB", (max(1, round(w * factor)), max(1, round(h * factor))))
        image = image.convert("RGB")
        across, down = image.size[0] / w, image.size[1] / h  # the decoder's reduction
        array = np.asarray(image, dtype=np.uint8)
    extent = crop / factor  # the box's side in original pixels
    if train:
        resized_h, resized_w = max(crop, round(h * factor)), max(crop, round(w * factor))
        top = float(torch.randint(0, resized_h - crop + 1, (1,), generator=generator))
        left = float(torch.randint(0, resized_w - crop + 1, (1,), generator=generator))
        flip = float(torch.rand(1, generator=generator).item() < 0.5)
        top, left = top / factor, left / factor
    else:
        top, left, flip = (h - extent) / 2, (w - extent) / 2, 0.0
    box = [top * down, left * across, extent * down, extent * across, flip, *array.shape[:2]]
    return torch.from_numpy(array.copy()).permute(2, 0, 1), box


def collate(images: list[torch.Tensor]) -> torch.Tensor:
    """Images of different sizes in one uint8 batch, each at the top left of a canvas as
    large as the largest."""
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    batch = torch.zeros(len(images), images[0].shape[0], height, width, dtype=torch.uint8)
    for i, image in enumerate(images):
        batch[i, :, :image.shape[1], :image.shape[2]] = image
    return batch


def crop_resize_flip(canvas: torch.Tensor, boxes: torch.Tensor,
                     size: int | tuple[int, int]) -> torch.Tensor:
    """Each image's box resized to `size` x `size` (or to `size`'s height x width) and
    mirrored where its flip is 1, for the whole batch in one bilinear `grid_sample`;
    values in [0, 1]. A row of `boxes` is (top, left, height, width, flip, image height,
    image width) in pixels of `canvas`; samples are kept inside the image, so the
    canvas's padding never blends in."""
    boxes = boxes.to(canvas.device, torch.float32)
    top, left, box_h, box_w, flip, image_h, image_w = boxes.unbind(1)
    size_h, size_w = (size, size) if isinstance(size, int) else size
    down = torch.arange(size_h, device=canvas.device, dtype=torch.float32) + 0.5
    across = torch.arange(size_w, device=canvas.device, dtype=torch.float32) + 0.5
    ys = top[:, None] + down * (box_h / size_h)[:, None] - 0.5  # pixel centres, N x size_h
    xs = left[:, None] + across * (box_w / size_w)[:, None] - 0.5
    xs = torch.where(flip[:, None] > 0, xs.flip(1), xs)
    ys = torch.minimum(ys.clamp(min=0), (image_h - 1)[:, None])
    xs = torch.minimum(xs.clamp(min=0), (image_w - 1)[:, None])
    n, _, height, width = canvas.shape
    grid = torch.stack(torch.broadcast_tensors((2 * xs[:, None, :] + 1) / width - 1,
                                               (2 * ys[:, :, None] + 1) / height - 1), dim=-1)
    sampled = F.grid_sample(canvas.float(), grid, mode="bilinear", align_corners=False)
    return sampled / 255
