"""Training data: CIFAR-10's python-pickle batches, Fashion-MNIST's idx files, an
ImageFolder tree, or synthetic images, each as a train and a test `Split`. How a split
becomes batches on the device is feed.py's; the augmentation is augment.py's."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from resdsl.errors import Diagnostic, ResdslError, ResdslWarning, Span
from resdsl.training.augment import crop_resize_flip, decode

CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]
MEAN_SAMPLE = 1024  # training images whose centre crops make an image folder's mean
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"  # apt install dataset-fashion-mnist
FASHION_MNIST = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass
class Split:
    """Images and labels, the mean to subtract, and the size that files are cropped to."""

    images: torch.Tensor | list[Path]  # uint8 N x C x H x W in memory, or image files
    labels: torch.Tensor
    mean: torch.Tensor  # subtracted from x / 255: per pixel (C x H x W) or per channel
    train: bool
    crop: int  # output size
    classes: int  # what the source has, whether or not every one is in this split
    scale: tuple[int, int] | None = None  # ImageNet-style: shorter side drawn from [a, b]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.images, torch.Tensor)

    def head(self, count: int) -> "Split":
        """The first `count` images."""
        return replace(self, images=self.images[:count], labels=self.labels[:count])

    def to(self, device: torch.device) -> "Split":
        """The split with what the device needs on it: all of an in-memory split (once,
        for the whole run), the mean of one read from files."""
        move = (lambda t: t.to(device)) if self.in_memory else (lambda t: t)
        return replace(self, images=move(self.images), labels=move(self.labels),
                       mean=self.mean.to(device))


def fit_classes(split: Split, outputs: int, source: str, network: str, code: str,
                warn: bool = True) -> None:
    """Refuse data with more classes than the network scores (its labels would index
    past the outputs); warn (W107) where the network scores classes the data never names:
    a 200-class network trains on 10-class data, 190 of its outputs wasted, in silence."""
    if split.classes > outputs:
        raise ResdslError(f"{source} has {split.classes} classes, but {network} scores "
                          f"{outputs} classes", code=code,
                          hint=f"write `classes {split.classes}` in the file, or "
                               f"--set classes={split.classes}")
    if split.classes < outputs and warn:
        warnings.warn(ResdslWarning(Diagnostic(
            "W107", f"{network} scores {outputs} classes, but {source} has {split.classes}: "
                    f"{outputs - split.classes} of its outputs are never a label", None,
            hint=f"--set classes={split.classes} matches the data", severity="warning")))


# --- sources ----------------------------------------------------------------------------

def open_source(spec: str, input_shape, classes: int, synthetic_size: int,
                seed: int, with_train: bool = True) -> tuple[Split | None, Split]:
    """The train and test splits that `--data` names. Without `with_train`, an image
    folder's training split is neither read nor returned (see `image_folder`)."""
    kind, _, where = spec.partition(":")
    if kind == "cifar10" and where:
        return cifar10(where)
    if kind == "fashion-mnist":
        return fashion_mnist(where or FASHION_MNIST_DEBIAN, tuple(input_shape))
    if kind == "imagefolder" and where:
        return image_folder(where, crop=input_shape[-1], with_train=with_train)
    if kind == "synthetic":
        return synthetic(tuple(input_shape), classes, size=synthetic_size, seed=seed)
    raise ResdslError(f"unknown data source '{spec}'",
                      hint="use cifar10:DIR, fashion-mnist[:DIR], imagefolder:DIR or synthetic",
                      code="E706")


def cifar10(folder: str | Path) -> tuple[Split, Split]:
    """The official archive's python version: data_batch_1..5 and test_batch, each a
    pickled dict with b'data' (N x 3072 uint8, channel-major) and b'labels'."""
    folder = Path(folder)
    train_x, train_y = _cifar_batches(folder, CIFAR_TRAIN)
    test_x, test_y = _cifar_batches(folder, CIFAR_TEST)
    mean = train_x.float().mean(0) / 255  # the per-pixel mean of sec. 4.2
    return (Split(train_x, train_y, mean, True, 32, 10),
            Split(test_x, test_y, mean, False, 32, 10))


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


def fashion_mnist(folder: str | Path, input_shape: tuple[int, ...]) -> tuple[Split, Split]:
    """Zalando's 70,000 28x28 grey images of clothing in 10 classes, from the four idx
    files (gzipped or not), shaped for a network that takes C x H x W: centred on a black
    canvas of H x W (28x28 becomes CIFAR's 32x32) and repeated over C channels. Training
    then augments as on CIFAR, and subtracts the per-pixel mean."""
    folder = Path(folder)
    channels, height, width = input_shape
    if height < 28 or width < 28:
        raise ResdslError(f"Fashion-MNIST's 28x28 images do not fit the network's "
                          f"{height}x{width} input", hint="use a network whose input is at "
                          "least 28x28, such as archs/cifar-resnet.arch", code="E706")
    top, left = (height - 28) // 2, (width - 28) // 2
    splits = []
    for train in (True, False):
        images_file, labels_file = FASHION_MNIST[train]
        images, labels = _idx(folder, images_file, 3), _idx(folder, labels_file, 1)
        if len(images) != len(labels):
            raise ResdslError(f"{images_file} has {len(images)} images but {labels_file} has "
                              f"{len(labels)} labels", Span(str(folder / labels_file), 0, 0),
                              code="E706")
        canvas = torch.zeros(len(images), channels, height, width, dtype=torch.uint8)
        canvas[:, :, top:top + 28, left:left + 28] = torch.from_numpy(images)[:, None]
        mean = canvas.float().mean(0) / 255 if train else splits[0].mean
        splits.append(Split(canvas, torch.from_numpy(labels.astype(np.int64)), mean, train,
                            height, 10))
    return splits[0], splits[1]


def _idx(folder: Path, name: str, dimensions: int) -> np.ndarray:
    """One idx file (LeCun's MNIST format): a big-endian header, then unsigned bytes."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            break
    else:
        raise ResdslError(f"{folder} has no Fashion-MNIST file '{name}.gz' (or '{name}')",
                          Span(str(folder / f"{name}.gz"), 0, 0),
                          hint="give the folder with the four idx files; Debian's "
                               "dataset-fashion-mnist package installs them in "
                               f"{FASHION_MNIST_DEBIAN}", code="E706")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            data = handle.read()
        magic, *sizes = np.frombuffer(data, ">u4", count=1 + dimensions)
        if magic != 0x800 + dimensions:
            raise ValueError(f"magic number {magic:#x}, not {0x800 + dimensions:#x}")
        header = 4 * (1 + dimensions)
        return np.frombuffer(data, np.uint8, offset=header).reshape(sizes).copy()
    except (OSError, EOFError, ValueError) as error:
        raise ResdslError(f"{path.name} is not an idx file of {dimensions} dimension(s) "
                          f"({error})", Span(str(path), 0, 0), code="E706") from None


def image_folder(folder: str | Path, crop: int = 224,
                 with_train: bool = True) -> tuple[Split | None, Split]:
    """`folder/train/<class>/*.jpg` and `folder/val/<class>/*.jpg`, as torchvision's
    ImageFolder reads them: classes in sorted order. Without `with_train`, only val/ is
    read (and the test split's mean is zero): for weights that bring their own
    normalisation."""
    if importlib.util.find_spec("PIL") is None:
        raise ResdslError("imagefolder data needs Pillow to read images",
                          hint="pip install pillow (or resdsl[images])", code="E706")
    folder = Path(folder)
    train = None
    if with_train:
        files, labels, classes = _image_files(folder / "train")
        train = Split(files, labels, _pixel_mean(files, crop), True, crop, len(classes),
                      scale=(256, 480) if crop == 224 else (crop, crop * 15 // 8))
    files, labels, val_classes = _image_files(folder / "val")
    if with_train and val_classes != classes:
        raise ResdslError(f"{folder / 'val'} has other classes than {folder / 'train'}",
                          Span(str(folder / "val"), 0, 0), code="E706")
    mean = train.mean if train else torch.zeros(3, 1, 1)
    test = Split(files, labels, mean, False, crop, len(val_classes))
    return train, test


def _image_files(root: Path) -> tuple[list[Path], torch.Tensor, list[str]]:
    """The images under root/<class>/, their labels, and the class names in order."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not names:
        raise ResdslError(f"{root} has no class folders", Span(str(root), 0, 0),
                          hint="lay the images out as train/<class>/*.jpg and "
                               "val/<class>/*.jpg", code="E706")
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
    return files, torch.tensor(labels), names


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
    return (Split(images[:cut], labels[:cut], mean, True, shape[-1], classes),
            Split(images[cut:], labels[cut:], mean, False, shape[-1], classes))
