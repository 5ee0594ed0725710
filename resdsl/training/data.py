"""Training data: CIFAR-10's python-pickle batches, an ImageFolder tree, or synthetic
images, each as a train and a test `Split`. How a split becomes batches on the device is
feed.py's; the augmentation is augment.py's."""

from __future__ import annotations

import importlib.util
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from resdsl.errors import ResdslError, Span
from resdsl.training.augment import crop_resize_flip, decode

CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]
MEAN_SAMPLE = 1024  # training images whose centre crops make an image folder's mean
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


@dataclass
class Split:
    """Images and labels, the mean to subtract, and the size that files are cropped to."""

    images: torch.Tensor | list[Path]  # uint8 N x C x H x W in memory, or image files
    labels: torch.Tensor
    mean: torch.Tensor  # subtracted from x / 255: per pixel (C x H x W) or per channel
    train: bool
    crop: int  # output size
    scale: tuple[int, int] | None = None  # ImageNet-style: shorter side drawn from [a, b]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.images, torch.Tensor)

    def to(self, device: torch.device) -> "Split":
        """The split with what the device needs on it: all of an in-memory split (once,
        for the whole run), the mean of one read from files."""
        move = (lambda t: t.to(device)) if self.in_memory else (lambda t: t)
        return replace(self, images=move(self.images), labels=move(self.labels),
                       mean=self.mean.to(device))


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
        if not files:
            raise ResdslError(f"{root} has class folders but no images in them",
                              Span(str(root), 0, 0),
                              hint="images end in " + ", ".join(IMAGE_SUFFIXES), code="E706")
        mean = _pixel_mean(files, crop) if train else splits[0].mean
        splits.append(Split(files, torch.tensor(labels), mean, train, crop,
                            scale=(256, 480) if crop == 224 else (crop, crop * 15 // 8)))
    return splits[0], splits[1]


def _pixel_mean(files: list[Path], crop: int) -> torch.Tensor:
    """The per-pixel mean that sec. 3.4 subtracts: C x crop x crop, over the evaluation
    crops of MEAN_SAMPLE training images spread evenly over the set."""
    sample = files[::max(1, len(files) // MEAN_SAMPLE)][:MEAN_SAMPLE]
    total = torch.zeros(3, crop, crop, dtype=torch.float64)
    for path in sample:
        image, box = decode(path, crop, None, False, None)
        total += crop_resize_flip(image[None], torch.tensor([box]), crop)[0].double()
    return (total / len(sample)).float()


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
