"""The paper's degradation experiment (sec. 4.2, Fig. 6): plain-20 and plain-56 against
ResNet-20 and ResNet-56, trained alike on the same data; training error dashed, test
error bold, plain nets on the left, residual nets on the right.

    # the paper's setting, on the user's CIFAR-10 (the python batches):
    python3 examples/degradation.py --data cifar10:cifar-10-batches-py --out runs/fig6
    # small scale on any machine: scikit-learn's 8x8 digits, upsampled to 32x32
    python3 examples/degradation.py --digits --steps 300 --batch 64 --out runs/digits

Milestones fall at 50% and 75% of the steps, as 32k and 48k do of the paper's 64k.
Run again with the same --out, it continues each run from its last checkpoint.
Needs matplotlib (and scikit-learn for --digits).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from resdsl.training import curves
from resdsl.training.loop import TrainConfig, train
from resdsl.training.recipe import Recipe

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = [("plain-20", "cifar-plain.arch", 3), ("plain-56", "cifar-plain.arch", 9),
            ("ResNet-20", "cifar-resnet.arch", 3), ("ResNet-56", "cifar-resnet.arch", 9)]


def write_digits(folder: Path) -> str:
    """scikit-learn's digits (1,797 images, 8x8, 17 grey levels) in CIFAR-10's python
    format: upsampled 4x to 32x32, grey to RGB; 1,500 for training, 297 for test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((4, 4))) * (255 / 16)
    images = np.repeat(images[:, None], 3, axis=1).astype(np.uint8).reshape(len(images), -1)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], digits.target[order].tolist()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(5):
        part = slice(300 * i, 300 * (i + 1))
        batch = {b"data": images[part], b"labels": labels[part]}
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": images[1500:],
                                                     b"labels": labels[1500:]}))
    return f"cifar10:{folder}"


def run(data: str, out: Path, steps: int, batch: int, log_every: int,
        warmup: bool) -> dict[str, Path]:
    folders = {}
    for label, arch, n in NETWORKS:
        folder = out / label
        recipe = Recipe(batch=batch, lr=0.1, milestones=(steps // 2, steps * 3 // 4),
                        steps=steps, warmup_lr=0.01 if warmup else None)
        every = max(log_every, steps // 20 // log_every * log_every)
        print(f"--- {label}", flush=True)
        train(TrainConfig(arch=str(ROOT / "archs" / arch), params={"n": n}, data=data,
                          out=folder, recipe=recipe, log_every=log_every, eval_every=every,
                          checkpoint_every=every, resume="auto", progress=False))
        folders[label] = folder
    return folders


def plot(folders: dict[str, Path], path: Path, title: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    colours = {"20": "tab:orange", "56": "tab:red"}
    rows = ["| network | final training error | final test error |", "|---|---:|---:|"]
    for label, folder in folders.items():
        axis = axes[0 if label.startswith("plain") else 1]
        run = curves.read(folder)
        steps, smooth = np.array(curves.smoothed(run.train)).T
        test_steps, test_errors = np.array(run.test).T
        colour = colours[label.split("-")[1]]
        axis.plot(steps, 100 * smooth, "--", color=colour, linewidth=1)
        axis.plot(test_steps, 100 * test_errors, "-", color=colour, linewidth=2.2, label=label)
        rows.append(f"| {label} | {100 * smooth[-1]:.1f}% | {100 * test_errors[-1]:.1f}% |")
    for axis, name in zip(axes, ("plain", "ResNet")):
        axis.set_xlabel("iteration")
        axis.set_title(f"{name} (dashed: training error, bold: test error)", fontsize=10)
        axis.legend()
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("error (%)")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a source as `resdsl train --data` takes it")
    source.add_argument("--digits", action="store_true",
                        help="scikit-learn's digits, upsampled, as CIFAR-format files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=64_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--plot", type=Path, help="the PNG (default OUT/degradation.png)")
    parser.add_argument("--warmup", action="store_true",
                        help="all four start at lr 0.01 until their training error is under "
                             "80%% (the paper's remedy for ResNet-110, sec. 4.2); short runs "
                             "need it, as a rate of 0.1 can throw a deep net off at the start")
    args = parser.parse_args()
    data = write_digits(args.out / "digits-cifar") if args.digits else args.data
    folders = run(data, args.out, args.steps, args.batch, args.log_every, args.warmup)
    what = ("scikit-learn digits, 32x32" if args.digits else data) + (
        ", 0.01 warm-up" if args.warmup else "")
    rows = plot(folders, args.plot or args.out / "degradation.png",
                f"{what}: {args.steps:,} iterations of batch {args.batch}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
