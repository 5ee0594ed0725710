"""Training data: CIFAR-10's python-pickle batches, an ImageFolder tree, or synthetic
images; the paper's augmentation; and a deterministic order of batches.

Every batch is a pure function of (seed, epoch, batch number): the order comes from a
`DistributedSampler` seeded per epoch, and each batch's augmentation from a generator
seeded by its position. So a resumed run sees exactly the batches it would have seen,
whatever the number of loader workers, and no data RNG state needs saving.
"""

from __future__ import annotations

import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from resdsl.errors import ResdslError, Span

CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per channel, for images of varying size
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


@dataclass
class Split:
    """Images and labels, and how to turn a list of indices into a float batch."""

    images: torch.Tensor | list[Path]  # uint8 N x C x H x W in memory, or image files
    labels: torch.Tensor
    mean: torch.Tensor  # subtracted from x / 255: per pixel (C x H x W) or per channel
    train: bool
    crop: int  # output size
    scale: tuple[int, int] | None = None  # ImageNet-style: shorter side drawn from [a, b]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: list[int], generator: torch.Generator):
        if isinstance(self.images, torch.Tensor):
            x = self.images[indices].float() / 255
            if self.train:
                x = _pad_crop_flip(x, 4, generator)
        else:
            x = torch.stack([_load_image(self.images[i], self.crop, self.scale, self.train,
                                         generator) for i in indices])
        return x - self.mean, self.labels[indices]


def _pad_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """CIFAR augmentation (sec. 4.2): pad 4 pixels, take a random crop, flip half."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    flip = torch.rand(n, generator=generator) < 0.5
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n)[:, None, None, None]
    channel = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channel, rows, cols]


def _load_image(path: Path, crop: int, scale, train: bool, generator) -> torch.Tensor:
    """ImageNet-style (sec. 3.4): shorter side resized to a random size in [256, 480],
    a random crop, a random flip; for evaluation, shorter side 256 and the centre crop."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        low, high = scale if train else (256, 256)
        side = int(torch.randint(low, high + 1, (1,), generator=generator)) if train else low
        side = max(side, crop)
        w, h = image.size
        factor = side / min(w, h)
        image = image.resize((max(crop, round(w * factor)), max(crop, round(h * factor))),
                             Image.BILINEAR)
        w, h = image.size
        if train:
            top = int(torch.randint(0, h - crop + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - crop + 1, (1,), generator=generator))
        else:
            top, left = (h - crop) // 2, (w - crop) // 2
        array = np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.float32)
    x = torch.from_numpy(array.copy()).permute(2, 0, 1) / 255
    if train and torch.rand(1, generator=generator).item() < 0.5:
        x = x.flip(-1)
    return x


# --- sources ----------------------------------------------------------------------------

def open_source(spec: str, input_shape, classes: int, synthetic_size: int,
                seed: int) -> tuple[Split, Split]:
    """The train and test splits that `--data` names."""
    kind, _, where = spec.partition(":")
    if kind == "cifar10" and where:
        return cifar10(where)
    if kind == "imagefolder" and where:
        return image_folder(where, crop=input_shape[-1])
    if kind == "synthetic":
        return synthetic(tuple(input_shape), classes, size=synthetic_size, seed=seed)
    raise ResdslError(f"unknown data source '{spec}'",
                      hint="use cifar10:DIR, imagefolder:DIR or synthetic", code="E706")


def cifar10(folder: str | Path) -> tuple[Split, Split]:
    """The official archive's python version: data_batch_1..5 and test_batch, each a
    pickled dict with b'data' (N x 3072 uint8, channel-major) and b'labels'."""
    folder = Path(folder)
    train_x, train_y = _cifar_batches(folder, CIFAR_TRAIN)
    test_x, test_y = _cifar_batches(folder, CIFAR_TEST)
    mean = train_x.float().mean(0) / 255  # the per-pixel mean of sec. 4.2
    return (Split(train_x, train_y, mean, True, 32), Split(test_x, test_y, mean, False, 32))


def _cifar_batches(folder: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for name in names:
        path = folder / name
        try:
            with path.open("rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels.extend(int(v) for v in batch[b"labels"])
        except FileNotFoundError:
            raise ResdslError(f"{folder} has no CIFAR-10 batch '{name}'", Span(str(path), 0, 0),
                              hint="give the folder that the official python archive "
                                   "(cifar-10-python.tar.gz) unpacks to, cifar-10-batches-py",
                              code="E706")
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as error:
            raise ResdslError(f"{name} is not a CIFAR-10 python batch ({error})",
                              Span(str(path), 0, 0), code="E706") from None
        images.append(torch.from_numpy(data.copy()))
    return torch.cat(images), torch.tensor(labels)


def image_folder(folder: str | Path, crop: int = 224) -> tuple[Split, Split]:
    """`folder/train/<class>/*.jpg` and `folder/val/<class>/*.jpg`, as torchvision's
    ImageFolder reads them: classes in sorted order."""
    if importlib.util.find_spec("PIL") is None:
        raise ResdslError("imagefolder data needs Pillow to read images",
                          hint="pip install pillow (or resdsl[images])", code="E706")
    folder = Path(folder)
    splits = []
    classes = None
    for part, train in (("train", True), ("val", False)):
        root = folder / part
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not names:
            raise ResdslError(f"{root} has no class folders", Span(str(root), 0, 0),
                              hint="lay the images out as train/<class>/*.jpg and "
                                   "val/<class>/*.jpg", code="E706")
        if classes is not None and names != classes:
            raise ResdslError(f"{root} has other classes than {folder / 'train'}",
                              Span(str(root), 0, 0), code="E706")
        classes = names
        files, labels = [], []
        for label, name in enumerate(names):
            for path in sorted((root / name).iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    files.append(path)
                    labels.append(label)
        mean = torch.tensor(IMAGENET_MEAN).reshape(3, 1, 1)
        splits.append(Split(files, torch.tensor(labels), mean, train, crop,
                            scale=(256, 480) if crop == 224 else (crop, crop * 15 // 8)))
    return splits[0], splits[1]


def synthetic(shape: tuple[int, ...], classes: int, size: int = 1024,
              seed: int = 0) -> tuple[Split, Split]:
    """Random images whose class shifts their mean: learnable, for smoke runs and tests."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (size,), generator=generator)
    noise = torch.randint(0, 128, (size, *shape), generator=generator, dtype=torch.uint8)
    images = noise + (labels * (127 // max(classes - 1, 1))).to(torch.uint8)[:, None, None, None]
    mean = images.float().mean(0) / 255
    cut = size * 7 // 8
    return (Split(images[:cut], labels[:cut], mean, True, shape[-1]),
            Split(images[cut:], labels[cut:], mean, False, shape[-1]))


# --- the order of batches ---------------------------------------------------------------

class EpochBatches(Dataset):
    """The batches of one epoch for this process, from `first` on; item k is a pure
    function of (seed, epoch, k), so a DataLoader's workers can make them in parallel.
    A training split is shuffled by a `DistributedSampler` and its last partial batch
    dropped; a test split is read in order, once."""

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

    def __getitem__(self, k: int):
        position = ((self.seed * 1_000_003 + self.epoch) * 1_000_003 + self.first + k) * 4099
        generator = torch.Generator().manual_seed((position + self.rank) % 2**63)
        return self.split.batch(self.batches[k], generator)


def batches_per_epoch(split: Split, batch: int, world: int) -> int:
    return (len(split) // world) // batch


def epoch_loader(split: Split, batch: int, seed: int, epoch: int, rank: int, world: int,
                 first: int, workers: int, pin_memory: bool) -> DataLoader:
    """This rank's batches of `epoch` from batch `first` on, made by `workers` processes
    (0: in this one); pinned for an asynchronous copy to a GPU. The loader gets a
    generator of its own: by default each new iterator draws a seed from torch's global
    one, which dropout also draws from, and a resumed run, starting its loader
    mid-epoch, would then draw in another order than the uninterrupted run."""
    batches = EpochBatches(split, batch, seed, epoch, rank, world, first)
    return DataLoader(batches, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(seed))
