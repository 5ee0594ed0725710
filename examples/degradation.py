"""The paper's degradation experiment (sec. 4.2, Figures 1 and 6): plain nets and ResNets
of 20, 32, 44, 56 and 110 layers, trained alike on the same data; training error dashed,
test error bold, plain nets on the left, ResNets on the right; and a table of the final
errors.

    # on the CPU, in under an hour: 20 and 56 layers, 500 steps (see the README)
    python3 examples/degradation.py --depths 20,56 --steps 500 --eval-every 100 --out runs/fig6-cpu
    # the full configuration, on a GPU: all five depths, 6,000 steps
    python3 examples/degradation.py --steps 6000 --out runs/fig6
    # the paper's own setting, on CIFAR-10 (the python batches)
    python3 examples/degradation.py --data cifar10:cifar-10-batches-py --steps 64000 --out runs/fig6-cifar

The data defaults to Fashion-MNIST as Debian's dataset-fashion-mnist package installs it.
The recipe is the paper's CIFAR recipe (batch 128, rate 0.1 divided by 10 at 50% and 75%
of the steps, as at 32k and 48k of its 64k; 0.01 until the training error is under 80%
for 110 layers), scaled to --steps. Run again with the same --out, and each network goes
on from its last checkpoint. Needs matplotlib (and scikit-learn for --digits).
"""

from __future__ import annotations

import argparse
import pickle
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from resdsl.training import curves
from resdsl.training.loop import TrainConfig, train
from resdsl.training.recipe import default_recipe

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {20: "tab:orange", 32: "tab:cyan", 44: "tab:green", 56: "tab:red", 110: "black"}


def networks(depths: list[int]) -> list[tuple[str, str, int]]:
    """(label, arch file, depth): the plain nets first, as the figure's left panel."""
    return [(f"{kind}-{depth}", arch, depth) for kind, arch in
            (("plain", "cifar-plain.arch"), ("ResNet", "cifar-resnet.arch"))
            for depth in depths]


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


def run(data: str, out: Path, depths: list[int], steps: int, batch: int, log_every: int,
        eval_every: int, device: str) -> dict[str, tuple[Path, float]]:
    """Each network's run folder, and the minutes this call spent training it."""
    folders = {}
    for label, arch, depth in networks(depths):
        recipe = replace(default_recipe(32, depth), batch=batch, steps=steps,
                         milestones=(steps // 2, steps * 3 // 4))
        print(f"--- {label}", flush=True)
        start = time.monotonic()
        train(TrainConfig(arch=str(ROOT / "archs" / arch), params={"n": (depth - 2) // 6},
                          data=data, out=out / label, recipe=recipe, log_every=log_every,
                          eval_every=eval_every, checkpoint_every=eval_every, device=device,
                          resume="auto", progress=False))
        folders[label] = out / label, (time.monotonic() - start) / 60
    return folders


def plot(folders: dict[str, tuple[Path, float]], path: Path, title: str) -> list[str]:
    """Figure 6 as a PNG, and the table of final errors as Markdown rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    rows = ["| network | final training error | final test error | lowest test error "
            "| minutes |", "|---|---:|---:|---:|---:|"]
    for label, (folder, minutes) in folders.items():
        kind, depth = label.split("-")
        axis = axes[0 if kind == "plain" else 1]
        run = curves.read(folder)
        steps, smooth = np.array(curves.smoothed(run.train)).T
        test_steps, test_errors = np.array(run.test).T
        colour = COLOURS.get(int(depth))
        axis.plot(steps, 100 * smooth, "--", color=colour, linewidth=1)
        axis.plot(test_steps, 100 * test_errors, "-", color=colour, linewidth=2.2,
                  label=f"{kind}-{depth}")
        rows.append(f"| {label} | {100 * smooth[-1]:.1f}% | {100 * test_errors[-1]:.1f}% "
                    f"| {100 * test_errors.min():.1f}% | {minutes:.1f} |")
    for axis, name in zip(axes, ("plain", "ResNet")):
        axis.set_xlabel("iter.")
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
    parser.add_argument("--data", default="fashion-mnist",
                        help="a source as `resdsl train --data` takes it (default: "
                             "Fashion-MNIST from Debian's dataset-fashion-mnist)")
    parser.add_argument("--digits", action="store_true",
                        help="instead, scikit-learn's 8x8 digits, upsampled to 32x32 and "
                             "written as CIFAR-format files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--depths", default="20,32,44,56,110",
                        type=lambda text: [int(d) for d in text.split(",")],
                        help="layers, each 6n+2 (default 20,32,44,56,110)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=500,
                        help="steps between test evaluations (a multiple of --log-every)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--plot", type=Path, help="the PNG (default OUT/degradation.png)")
    args = parser.parse_args()
    if any((depth - 2) % 6 for depth in args.depths):
        parser.error("each depth is 6n+2: 20, 32, 44, 56, 110, ...")
    data = write_digits(args.out / "digits-cifar") if args.digits else args.data
    folders = run(data, args.out, args.depths, args.steps, args.batch, args.log_every,
                  args.eval_every, args.device)
    what = "scikit-learn digits, 32x32" if args.digits else data
    rows = plot(folders, args.plot or args.out / "degradation.png",
                f"{what}: {args.steps:,} iterations of batch {args.batch}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
